"""`gunicorn` run in the repository (it reads this file from the working directory, or `-c gunicorn.conf.py`): the
bot's tuned settings, the one copy shipped in the package (inboxgpt/web/gunicorn_conf.py), which `inboxgpt serve`
uses too."""

import runpy

# Run afresh, not imported: gunicorn reads a config file's names, and each run must check the settings it has now.
globals().update(
    {name: value for name, value in runpy.run_module("inboxgpt.web.gunicorn_conf").items() if not name.startswith("__")}
)
