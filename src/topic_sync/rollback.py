"""What is CloudFormation doing with our stack? Rolling back (an Update is then the undo of
our own) or deleting it (the only time RemovalPolicy DESTROY deletes topics)."""

from __future__ import annotations

import logging

logger = logging.getLogger(__name__)

ROLLBACK_STATUS = "UPDATE_ROLLBACK_IN_PROGRESS"
DELETING_STATUS = "DELETE_IN_PROGRESS"
CONNECT_TIMEOUT_S = 2
READ_TIMEOUT_S = 2


def region_of(stack_id: str) -> str | None:
    """``arn:aws:cloudformation:REGION:ACCOUNT:stack/NAME/ID`` -> REGION."""
    parts = stack_id.split(":")
    return parts[3] if len(parts) > 5 and parts[3] else None


def stack_status(stack_id: str) -> str | None:
    """The stack's status (e.g. ``DELETE_IN_PROGRESS``), or None when it cannot be read.

    None (no permission, no network) must make the caller choose the data-safe path.
    """
    try:
        # Imported here: boto3 costs ~0.3 s and most invocations never get here.
        import boto3
        from botocore.config import Config

        client = boto3.client(
            "cloudformation",
            region_name=region_of(stack_id),
            # At most two tries of a few seconds: an unknown status takes the safe path anyway.
            config=Config(
                connect_timeout=CONNECT_TIMEOUT_S,
                read_timeout=READ_TIMEOUT_S,
                retries={"total_max_attempts": 2, "mode": "standard"},
            ),
        )
        stacks = client.describe_stacks(StackName=stack_id)["Stacks"]
        status = str(stacks[0]["StackStatus"]) if stacks else None
    except Exception as error:  # any failure (404 without a body, an HTML page, a timeout)
        # is "unknown", never a crash: the caller then keeps the topics.
        reason = " ".join(f"{type(error).__name__}: {error}".split())[:300]
        logger.warning("cannot read the stack status, assuming unknown: %s", reason)
        return None
    logger.info("stack status", extra={"stack_status": status})
    return status


def is_update_rollback(stack_id: str) -> bool:
    """True if the stack's status is UPDATE_ROLLBACK_IN_PROGRESS.

    A status that cannot be read counts as "not a rollback": the caller then refuses unsafe
    changes, which fails loudly instead of losing data.
    """
    return stack_status(stack_id) == ROLLBACK_STATUS
