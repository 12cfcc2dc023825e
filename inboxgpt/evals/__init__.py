"""Test sets for the assistant, run through the conversation that answers customers (`flask --app app eval FILE`).

`cases.py` reads an eval file; `watch.py` records what one answer drew on (also for `chat --explain`);
`rehearsal.py` builds that conversation with channels and tools that act on nothing; `judge.py` asks the judge
model; `runner.py` runs and grades the cases in parallel; `output.py` writes the table, JSON and JUnit.
"""
