"""Running host operations through pyinfra, in a child process (see worker.py for why)."""
