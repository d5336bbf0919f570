"""`swarm serve`: the reconcile timer, the local event socket and GitHub webhooks, in one process."""
