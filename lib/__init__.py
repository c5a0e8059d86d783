"""
lib: what the scripts at the top (prepare, train, sample, grade, bench) share. One job a module:

  configurator  settings (--key=value, config files, ranges), one-line errors, atomic writes
  device        where a script runs and in which number format; the device's measured peak
  tokenizer     byte-level BPE: trained here, run by tiktoken
  corpus        the shipped corpus, its val split and instruct form; reading story files
  progress      the one progress line every long step prints
  metrics       grade.py's offline measurements and the judge's grades
  llm           the one OpenAI-compatible chat client, and Batch API files
  llm_stories   the paper's recipe for an LLM-written corpus, and the checks its stories pass
  download      resumable, verified downloads (the real TinyStories)
  http          the retry policy that llm and download share
"""
