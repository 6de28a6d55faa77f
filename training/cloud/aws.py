"""The runner's AWS calls: boto3 clients with retries, S3 listing and transfers (through the transfer manager),
the spot price of the instance, and scaling the run's group to 0."""
from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import ClientError

from training.checksums import sha256_file
from training.cloud.spot_prices import latest_price
from training.errors import DataError

# Throttling and transient errors (5xx, connection resets) are retried with exponential backoff.
RETRY_CONFIG = Config(retries={"max_attempts": 8, "mode": "standard"}, connect_timeout=10, read_timeout=60)
TRANSFER_CONFIG = TransferConfig(multipart_threshold=16 * 2**20, multipart_chunksize=16 * 2**20, max_concurrency=4)
SHA256_METADATA_KEY = "sha256"
CONTENT_TYPES = {".json": "application/json", ".png": "image/png", ".keras": "application/zip", ".md": "text/markdown",
                 ".csv": "text/csv"}
# Where the region comes from when none is given, in this order (the AWS CLI's; boto3 alone reads only the second).
REGION_VARIABLES = ("AWS_REGION", "AWS_DEFAULT_REGION")

log = logging.getLogger("spotgrade.runner")


@dataclass
class Clients:
    s3: Any
    autoscaling: Any
    logs: Any
    sns: Any
    ec2: Any


def env_region(environ: Mapping[str, str] = os.environ) -> str | None:
    """The region the environment names: AWS_REGION, else AWS_DEFAULT_REGION (None: neither is set)."""
    return next((environ[name] for name in REGION_VARIABLES if environ.get(name)), None)


def session(region: str | None = None, profile: str | None = None) -> boto3.session.Session:
    """A boto3 session in `region`, else env_region()'s, else the profile's configured region."""
    return boto3.session.Session(profile_name=profile, region_name=region or env_region())


def make_clients(region: str | None, config: Config = RETRY_CONFIG) -> Clients:
    """Clients of the services the runner uses; endpoints follow AWS_ENDPOINT_URL where set (tests)."""
    aws_session = session(region)

    def client(name: str) -> Any:
        return aws_session.client(name, config=config)

    return Clients(client("s3"), client("autoscaling"), client("logs"), client("sns"), client("ec2"))


def split_s3_uri(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://"):
        raise DataError(f"{uri!r} is not an s3://bucket/key URI")
    bucket, _, key = uri[5:].partition("/")
    if not bucket:
        raise DataError(f"{uri!r} has no bucket name")
    return bucket, key


def upload_file(s3: Any, path: Path, bucket: str, key: str, content_type: str | None = None) -> None:
    extra = {"ContentType": content_type} if content_type else None
    s3.upload_file(str(path), bucket, key, ExtraArgs=extra, Config=TRANSFER_CONFIG)


def upload_dir(s3: Any, local_dir: Path, bucket: str, key_of: Callable[[str], str], last: Iterable[str] = (),
               skip: Iterable[str] = ()) -> list[str]:
    """Upload every file under local_dir, subdirectories included (but not the top-level ones named in `skip`),
    to `key_of(its relative path)` (a core.layout key); files named in `last` go last (a commit marker). The keys,
    in upload order."""
    local_dir, last, skip = Path(local_dir), set(last), set(skip)
    files = sorted(p for p in local_dir.rglob("*") if p.is_file())
    files = [p for p in files if p.parent == local_dir or p.relative_to(local_dir).parts[0] not in skip]
    files.sort(key=lambda p: p.name in last)
    keys = []
    for path in files:
        keys.append(key_of(path.relative_to(local_dir).as_posix()))
        upload_file(s3, path, bucket, keys[-1], CONTENT_TYPES.get(path.suffix))
    return keys


def list_objects(s3: Any, bucket: str, prefix: str) -> list[dict]:
    """Every object under prefix ({"Key", "Size", ...} as list_objects_v2 gives them, in key order), all pages."""
    objects: list[dict] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        objects.extend(page.get("Contents", []))
    return objects


def download_prefix(s3: Any, bucket: str, prefix: str, local_dir: Path) -> list[Path]:
    """Download every object under prefix into local_dir (relative paths kept)."""
    paths = []
    for obj in list_objects(s3, bucket, prefix):
        relative = obj["Key"][len(prefix):]
        if not relative or relative.endswith("/") or ".." in relative.split("/"):
            continue
        path = Path(local_dir) / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        s3.download_file(bucket, obj["Key"], str(path), Config=TRANSFER_CONFIG)
        paths.append(path)
    return paths


def download_data(s3: Any, uri: str, local_dir: Path) -> list[Path]:
    """Download a data object (or every object under a prefix), verifying size and any recorded sha256."""
    bucket, key = split_s3_uri(uri)
    if key and not key.endswith("/"):
        try:
            objects = [{"Key": key, **_head(s3, bucket, key)}]
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") not in ("404", "NoSuchKey", "NotFound"):
                raise
            objects = []
        if not objects:
            key += "/"
    if not key or key.endswith("/"):
        objects = [{"Key": o["Key"], **_head(s3, bucket, o["Key"])}
                   for o in list_objects(s3, bucket, key) if not o["Key"].endswith("/")]
    if not objects:
        raise DataError(f"no data at {uri}: upload it first (python -m training upload-data PATH) or fix dataUri")
    local_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for index, obj in enumerate(objects):
        name = obj["Key"].rsplit("/", 1)[-1]
        path = local_dir / (name if len(objects) == 1 else f"{index:04d}-{name}")
        s3.download_file(bucket, obj["Key"], str(path), Config=TRANSFER_CONFIG)
        source = f"s3://{bucket}/{obj['Key']}"
        size = path.stat().st_size
        if size != obj["size"]:
            raise DataError(f"{source}: downloaded {size} bytes, S3 says {obj['size']}: retry the run")
        expected = obj["sha256"]
        if expected:
            actual = sha256_file(path)
            if actual != expected.lower():
                raise DataError(f"{source}: sha256 {actual} does not match the recorded {expected}: re-upload the file")
        log.info("data %s: %d bytes%s", source, size, ", sha256 verified" if expected else "")
        paths.append(path)
    return paths


def _head(s3: Any, bucket: str, key: str) -> dict:
    head = s3.head_object(Bucket=bucket, Key=key)
    return {"size": head["ContentLength"], "sha256": head.get("Metadata", {}).get(SHA256_METADATA_KEY)}


def scale_to_zero(autoscaling: Any, group: str | None, attempts: int = 5,
                  sleep: Callable[[float], None] = time.sleep) -> bool:
    """Set the group's desired capacity to 0 so the instance terminates; True when done.

    Desired capacity only: the instance role may call autoscaling:SetDesiredCapacity on its own group and nothing
    else (the group's MinSize is 0, so 0 is always allowed)."""
    if not group:
        log.warning("no Auto Scaling group configured: not scaling to 0")
        return False
    for attempt in range(1, attempts + 1):
        try:
            autoscaling.set_desired_capacity(AutoScalingGroupName=group, DesiredCapacity=0, HonorCooldown=False)
            log.info("Auto Scaling group %s: desired capacity set to 0", group)
            return True
        except Exception as error:  # retried beyond botocore's own retries: this must not be skipped
            log.warning("scaling %s to 0 failed (try %d/%d): %s", group, attempt, attempts, error)
            if attempt < attempts:
                sleep(min(30.0, 2.0**attempt))
    log.error("could not scale %s to 0; the watchdog will", group)
    return False


def spot_price(ec2: Any, instance_type: str | None, availability_zone: str | None) -> float | None:
    """The latest spot price ($/h) of the type in the AZ, or None where unknown (never raises)."""
    if not instance_type or not availability_zone:
        return None
    try:
        return latest_price(ec2, instance_type, availability_zone)
    except Exception as error:  # cost is informative only
        log.warning("spot price of %s in %s unknown: %s", instance_type, availability_zone, error)
        return None
