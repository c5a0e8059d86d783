"""
progress.py: the one progress line every long step prints (stories made, MB downloaded or
encoded, completions generated and graded): done/total, the rate and an ETA, at most once a second.
"""
import time


class Progress:
    """`label: done/total unit (rate unit/s, eta Ns)note`. scale divides what is shown (1e6 for MB);
    start is work done before this run (a resumed download): counted in done, not in the rate.
    total 0 means unknown: no ETA."""

    def __init__(self, label, total, unit="", scale=1, start=0, every=1.0):
        self.label, self.total, self.unit, self.scale, self.every = label, total, unit, scale, every
        self.done = self.start = start
        self.t0, self.shown = time.time(), 0.0

    def update(self, n=1, note=""):
        self.done += n
        elapsed = time.time() - self.t0
        if elapsed - self.shown >= self.every or 0 < self.total <= self.done:
            self.shown = elapsed
            rate = (self.done - self.start) / max(elapsed, 1e-9)
            eta = f", eta {(self.total - self.done) / rate:.0f}s" if rate > 0 and self.total else ""
            show = (lambda x: f"{x:,.0f}") if self.scale == 1 else (lambda x: f"{x / self.scale:,.1f}")
            print(f"{self.label}: {show(self.done)}/{show(self.total)}{self.unit} "
                  f"({show(rate)}{self.unit}/s{eta}){note}", flush=True)
