"""`_batch_ingestion` requests (ML Commons' offline batch ingestion API body): parsed, run from the CLI
(run.py, local_files.py) or staged for the deployed stack's workflow (job.py)."""
