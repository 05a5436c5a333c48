"""`enhancement-worker top`: a live terminal view of one worker or a fleet."""
