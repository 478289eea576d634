"""osbatch: everything that runs in Lambda. Domain code here never reads the environment."""
