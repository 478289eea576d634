"""Lambda's execution model, locally: each invocation runs in a sandbox process of its function.

    pools = SandboxPools(endpoint_url)          # one per emulator (local/aws/patches/lambda_invoke.py)
    result = pools.invoke(spec, event)          # InvocationResult, or raises Throttled

bootstrap.py runs inside the sandbox, sandbox.py watches one from outside (timeout, memory, crashes),
pool.py keeps them warm per function and applies concurrency limits, logs.py ships their output.
"""

from local.aws.sandbox.pool import SandboxPools
from local.aws.sandbox.spec import FunctionSpec, InvocationResult, Throttled

__all__ = ["FunctionSpec", "InvocationResult", "SandboxPools", "Throttled"]
