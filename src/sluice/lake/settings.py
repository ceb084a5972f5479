"""Where a lake is stored, from its warehouse settings: a local directory, or a bucket.

    settings: {path: lake}                                   # local (the default)
    settings: {storage: s3, bucket: acme-lake, prefix: sluice/lake, region: eu-west-1}

The S3 settings have the archive's names and meanings (docs/storage.md): `endpoint_url` for
anything but AWS, `path_style` for MinIO, both keys or neither (then the standard AWS chain).
This module imports nothing heavy, so that checking a workspace (`sluice apply`) can call
`lake_settings_problem` without loading DuckDB or boto3. A problem names the field, never a
secret's value (nor the endpoint's: a URL may hold credentials).
"""

from __future__ import annotations

from typing import Any

from sluice.objectstore.settings import ObjectStoreSettings, bucket_problem, endpoint_problem

STORAGES = ("local", "s3")
S3_TEXT_FIELDS = ("bucket", "prefix", "endpoint_url", "region", "access_key_id")
SECRET_FIELD = "secret_access_key"
S3_FIELDS = (*S3_TEXT_FIELDS, SECRET_FIELD, "path_style")


class LakeSettingsProblem(ValueError):
    """A lake setting that cannot work: `field` (under `settings.`) and why."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"settings.{field} {message}")
        self.field = field
        self.message = message


def object_store_settings(settings: dict[str, Any]) -> ObjectStoreSettings | None:
    """The bucket a lake is written to; None for a local lake. Raises `LakeSettingsProblem`."""
    storage = settings.get("storage", "local")
    if storage not in STORAGES:
        raise LakeSettingsProblem("storage", f"must be one of {', '.join(STORAGES)}")
    if storage == "local":
        given = next((f for f in S3_FIELDS if settings.get(f) is not None), None)
        if given is not None:
            raise LakeSettingsProblem(given, "is a setting of `storage: s3` (set it too)")
        raw = settings.get("path")
        if isinstance(raw, str) and "://" in raw:
            raise LakeSettingsProblem(
                "path", "is a URL: write a lake to a bucket with `storage: s3` and `bucket`"
            )
        return None
    for name in (*S3_TEXT_FIELDS, SECRET_FIELD):
        value = settings.get(name)
        if value is not None and (not isinstance(value, str) or not value):
            raise LakeSettingsProblem(name, "must be a non-empty text")
    path_style = settings.get("path_style", False)
    if not isinstance(path_style, bool):
        raise LakeSettingsProblem("path_style", "must be true or false")
    bucket = settings.get("bucket")
    if bucket is None:
        raise LakeSettingsProblem("bucket", "is needed with `storage: s3`")
    if (problem := bucket_problem(bucket)) is not None:
        raise LakeSettingsProblem("bucket", f"{bucket!r}: {problem}")
    url = settings.get("endpoint_url")
    if url is not None and (problem := endpoint_problem(url)) is not None:
        raise LakeSettingsProblem("endpoint_url", problem)
    prefix = settings.get("prefix") or ""
    if prefix.startswith("/"):
        raise LakeSettingsProblem("prefix", "must not start with '/'")
    key, secret = settings.get("access_key_id"), settings.get(SECRET_FIELD)
    if (key is None) != (secret is None):
        missing = SECRET_FIELD if secret is None else "access_key_id"
        raise LakeSettingsProblem(
            missing,
            "is missing: access_key_id and secret_access_key go together (set both, or"
            " neither to use the AWS environment and credential chain)",
        )
    return ObjectStoreSettings(
        bucket=bucket,
        prefix=prefix,
        endpoint_url=url,
        region=settings.get("region"),
        access_key_id=key,
        secret_access_key=secret,
        path_style=path_style,
    )


def lake_settings_problem(settings: dict[str, Any]) -> LakeSettingsProblem | None:
    """What `sluice apply` refuses in a lake's settings (`warehouses[i].settings.<field>`)."""
    try:
        object_store_settings(settings)
    except LakeSettingsProblem as problem:
        return problem
    return None
