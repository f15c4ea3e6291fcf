"""Is CloudFormation rolling this stack back? (Then an Update is the undo of our own.)"""

from __future__ import annotations

import logging

logger = logging.getLogger(__name__)

ROLLBACK_STATUS = "UPDATE_ROLLBACK_IN_PROGRESS"


def region_of(stack_id: str) -> str | None:
    """``arn:aws:cloudformation:REGION:ACCOUNT:stack/NAME/ID`` -> REGION."""
    parts = stack_id.split(":")
    return parts[3] if len(parts) > 5 and parts[3] else None


def is_update_rollback(stack_id: str) -> bool:
    """True if the stack's status is UPDATE_ROLLBACK_IN_PROGRESS.

    Any failure to ask (no permission, no network) counts as "not a rollback": the caller
    then refuses unsafe changes, which fails loudly instead of losing data.
    """
    # Imported here: boto3 costs ~0.3 s and most invocations never get here.
    import boto3
    from botocore.config import Config
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
    )

    try:
        client = boto3.client(
            "cloudformation",
            region_name=region_of(stack_id),
            config=Config(connect_timeout=3, read_timeout=5, retries={"max_attempts": 2}),
        )
        stacks = client.describe_stacks(StackName=stack_id)["Stacks"]
    except (BotoCoreError, ClientError) as error:
        logger.warning("cannot read stack status; assuming no rollback: %s", error)
        return False
    status = str(stacks[0]["StackStatus"]) if stacks else ""
    logger.info("stack status", extra={"stack_status": status})
    return status == ROLLBACK_STATUS
