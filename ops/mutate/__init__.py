"""The mutation gate (`make mutate`): does the suite fail when the code that decides safety is wrong?

A mutant is one small edit a real bug could make (a comparison flipped, a check removed, a bound off
by one, a stage name swapped) in one of the files listed in `targets` of the language's runner. Each
mutant is applied to a scratch copy of the repository, built incrementally, and run against the tests
that cover its file. It is killed when a test fails (the first failing test is recorded), survived
when all pass, or equivalent when a person has read it and written down why no test can tell it
from the original (`ops/mutate/equivalents.json`, keyed by `Mutant.key`).

    core.py     Mutant, Outcome and the report (docs/MUTATION.md), shared by the runners
    swift.py    mutants of the Swift sources and how to build and test them
    hosts.py    mutants of the host scripts (hosts/) and how to test them
    __main__.py python3 -m ops.mutate [--short] [--only PATH]... : run, write the report, gate
"""
