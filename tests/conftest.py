"""What the tests share: where the scripts are, running one as a user does, the one-line error
every bad input must end in, and real stories to test with."""
import os
import subprocess
import sys

# the scripts and modules live at the top level, not in a package
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def run(script, *args, cwd, check=True, timeout=240, env=None):
    """python <script> <args> in cwd, as a user types it; check: it must exit 0."""
    result = subprocess.run([sys.executable, os.path.join(ROOT, script), *args], cwd=cwd, capture_output=True,
                            text=True, timeout=timeout, env=None if env is None else {**os.environ, **env})
    if check and result.returncode != 0:
        raise AssertionError(f"{script} {' '.join(args)} failed:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}")
    return result


def assert_one_line_error(result, *fragments):
    """Exit status not 0, no traceback, and one line on stderr, 'error: ...', naming each fragment."""
    assert result.returncode != 0, result.stdout[-1000:]
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def corpus_stories(n, start=0):
    """Stories n of the shipped corpus, from `start`: real test data, the same on every machine."""
    from lib import corpus
    return [r["story"] for r in corpus.read_corpus(corpus.checked_corpus())[start:start + n]]
