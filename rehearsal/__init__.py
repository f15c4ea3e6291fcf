"""Deploy rehearsal: the synthesized stack's IAM policies, provider framework and services, run
against a local Kafka broker (``make rehearse``; see README "Rehearse a deploy")."""
