"""The compiled part of Sluice: the warehouse's JSON reader (everything else is pyproject.toml)."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "sluice.warehouse._scan",
            ["src/sluice/warehouse/_scan.c"],
            extra_compile_args=["-O2", "-std=c11", "-Wall", "-Wextra"],
        )
    ]
)
