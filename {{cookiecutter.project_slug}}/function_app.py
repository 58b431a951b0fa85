"""The Functions host imports this module and indexes the one FunctionApp below."""

import azure.functions as func

from {{ cookiecutter.package_name }}.engine.settings import HTTP_AUTH_LEVEL
from {{ cookiecutter.package_name }}.functions import drain_worker, send_batch, send_message, sqs_trigger

app = func.FunctionApp(http_auth_level=func.AuthLevel(HTTP_AUTH_LEVEL))
app.register_functions(sqs_trigger.bp)
app.register_functions(drain_worker.bp)
app.register_functions(send_message.bp)
app.register_functions(send_batch.bp)
