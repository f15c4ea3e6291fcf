"""What is CloudFormation doing with our stack? Rolling back (an Update is then the undo of
our own) or deleting it (the only time RemovalPolicy DESTROY deletes topics)."""

from __future__ import annotations

import logging

logger = logging.getLogger(__name__)

ROLLBACK_STATUS = "UPDATE_ROLLBACK_IN_PROGRESS"
DELETING_STATUS = "DELETE_IN_PROGRESS"


def region_of(stack_id: str) -> str | None:
    """``arn:aws:cloudformation:REGION:ACCOUNT:stack/NAME/ID`` -> REGION."""
    parts = stack_id.split(":")
    return parts[3] if len(parts) > 5 and parts[3] else None


def stack_status(stack_id: str) -> str | None:
    """The stack's status (e.g. ``DELETE_IN_PROGRESS``), or None when it cannot be read.

    None (no permission, no network) must make the caller choose the data-safe path.
    """
    # Imported here: boto3 costs ~0.3 s and most invocations never get here.
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        client = boto3.client(
            "cloudformation",
            region_name=region_of(stack_id),
            config=Config(connect_timeout=3, read_timeout=5, retries={"max_attempts": 2}),
        )
        stacks = client.describe_stacks(StackName=stack_id)["Stacks"]
    except (BotoCoreError, ClientError) as error:
        logger.warning("cannot read the stack status: %s", error)
        return None
    status = str(stacks[0]["StackStatus"]) if stacks else None
    logger.info("stack status", extra={"stack_status": status})
    return status


def is_update_rollback(stack_id: str) -> bool:
    """True if the stack's status is UPDATE_ROLLBACK_IN_PROGRESS.

    A status that cannot be read counts as "not a rollback": the caller then refuses unsafe
    changes, which fails loudly instead of losing data.
    """
    return stack_status(stack_id) == ROLLBACK_STATUS
