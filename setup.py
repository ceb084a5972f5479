"""The compiled parts of Sluice (everything else is pyproject.toml): the warehouse's JSON reader,
its PostgreSQL binary COPY encoder, the lake's grouping of events and its count of distinct
texts (the choice of dictionary encoding), and the SQLite log's reader (store/sqlite_read.py).

All are optional: where no C compiler or no Python headers are found, setuptools warns and
installs Sluice without them, and the loader does their work in DuckDB and Python, slower
(src/sluice/warehouse/compiled.py).
"""

from setuptools import Extension, setup

FLAGS = ["-O3", "-std=c11", "-Wall", "-Wextra"]

setup(
    ext_modules=[
        Extension(
            "sluice.warehouse._scan",
            [
                "src/sluice/warehouse/_scan.c",
                "src/sluice/warehouse/_scan_json.c",
                "src/sluice/warehouse/_scan_outputs.c",
                "src/sluice/warehouse/_pool.c",
            ],
            # the headers: what also puts them in the sdist
            depends=[
                "src/sluice/warehouse/_scan.h",
                "src/sluice/warehouse/_pool.h",
                "src/sluice/_same_bytes.h",
            ],
            extra_compile_args=FLAGS,
            optional=True,
        ),
        Extension(
            "sluice.warehouse._pgcopy",
            ["src/sluice/warehouse/_pgcopy.c"],
            extra_compile_args=FLAGS,
            optional=True,
        ),
        Extension(
            "sluice.warehouse._group",
            [
                "src/sluice/warehouse/_group.c",
                "src/sluice/warehouse/_group_survey.c",
                "src/sluice/warehouse/_group_repeated.c",
                "src/sluice/warehouse/_group_order.c",
            ],
            depends=["src/sluice/warehouse/_group.h"],
            extra_compile_args=FLAGS,
            optional=True,
        ),
        Extension(
            "sluice.store._sqlite_read",
            ["src/sluice/store/_sqlite_read.c", "src/sluice/store/_sqlite_columns.c"],
            depends=["src/sluice/store/_sqlite_read.h"],
            libraries=["sqlite3"],  # needs sqlite3.h: without it, the log is read in Python
            extra_compile_args=FLAGS,
            optional=True,
        ),
        Extension(
            "sluice.lake._distinct",
            ["src/sluice/lake/_distinct.c"],
            depends=["src/sluice/_same_bytes.h"],
            extra_compile_args=FLAGS,
            optional=True,
        ),
    ]
)
