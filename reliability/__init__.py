"""`make reliability`: faults injected for real into the local runtime, and every record accounted for.

Each scenario uploads files through the deployed stack on the local runtime (moto's Step Functions running
the synthesized state machine, every function in its sandbox, the SageMaker emulator with the real MiniLM,
a real OpenSearch node), injects its fault, waits for the jobs to end and then counts, without asking
osbatch: records in from the input bytes, indexed from the index (`_count` and `_mget` of every id), dead
letters from the dead-letter objects. See docs/reliability.md.
"""
