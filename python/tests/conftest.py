"""Test order: the example notebook first.

Symbolica allows one process per user at a time (hessforge waits for the
process that holds it, see the README's license notice). The notebook runs
in a kernel process of its own, so it must derive before this process
starts Symbolica with its first derivation; it then exits and frees it.
"""


NOTEBOOK = "test_the_example_notebook_runs_and_shows_the_derivation"


def pytest_collection_modifyitems(items):
    items.sort(key=lambda item: item.name != NOTEBOOK)
