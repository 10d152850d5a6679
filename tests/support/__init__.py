"""Helpers shared by integration, interop tests and benchmarks.

Import as ``support`` (the ``tests/`` folder is put on ``sys.path`` by the
conftest files and the bench scripts): a package named ``tests`` is already
installed in site-packages by PyPI ``sippy``, so ``tests.support`` would not
resolve to this folder.
"""
