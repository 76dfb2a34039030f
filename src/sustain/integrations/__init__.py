"""Integrations: Sustain inside other runtimes, each in its own module so that importing
``sustain.integrations`` pulls in nothing heavy (import the module you use).

* ``sustain.integrations.asgi``: an ASGI app that receives the server's HTTP push and runs
  each pushed task until it completes or suspends (Cloud Run, any uvicorn host).
* ``sustain.integrations.aws_lambda``: the same as an AWS Lambda handler, plus the API
  Gateway event and response helpers an HTTP-triggered Lambda needs.
* ``sustain.integrations.kafka``: a consumer loop starting one durable workflow per message.

The two serverless ones share one core, ``sustain.sdk.serverless``, which runs the pushed
task with the SDK's own replay runtime.
"""
