"""The compiled parts of Sluice (everything else is pyproject.toml): the warehouse's JSON reader
and its PostgreSQL binary COPY encoder."""

from setuptools import Extension, setup

FLAGS = ["-O2", "-std=c11", "-Wall", "-Wextra"]

setup(
    ext_modules=[
        Extension(
            "sluice.warehouse._scan", ["src/sluice/warehouse/_scan.c"], extra_compile_args=FLAGS
        ),
        Extension(
            "sluice.warehouse._pgcopy", ["src/sluice/warehouse/_pgcopy.c"], extra_compile_args=FLAGS
        ),
    ]
)
