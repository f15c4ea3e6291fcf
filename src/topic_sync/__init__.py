"""Declarative Kafka topic sync for Amazon MSK (Serverless) with IAM auth.

spec (validated values) -> observe (batched describe) -> plan (pure) ->
apply (batched, per-topic results) -> verify (re-read). The Lambda handler,
the CLI and the CDK construct are thin adapters over this package.
"""
