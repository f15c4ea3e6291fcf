"""`make bench`: topic-sync against the bastion way and the raw AdminClient floor (issue 6)."""
