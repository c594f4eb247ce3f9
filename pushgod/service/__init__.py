"""Use cases (send, event and thing lifecycles, reads, administration), auth and the hub."""
