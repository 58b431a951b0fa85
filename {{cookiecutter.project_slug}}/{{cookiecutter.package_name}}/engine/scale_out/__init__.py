"""Scale-out past one instance: the timer's drain fans extra passes out through an Azure Storage queue.

Timer functions are singletons, so the tick's drain runs on one instance. When that pass
cannot clear the backlog within its budget, it puts drain tokens on a Storage queue, and
the queue-triggered ``drain_input_queue_on_token`` runs one more drain pass per token. The
platform's scale controller already scales queue triggers on queue length, so K tokens
become up to K instances, with no scaler of our own.

- ``decision``: how many tokens, from the backlog and the pass's measured rate (pure).
- ``drain_token``: what a token carries: no message, only when and for which queue.
- ``token_queue``: the Storage queue, reached with the ``AzureWebJobsStorage`` connection.
- ``fan_out``: the timer's side: decide once per pass, then put the tokens.
"""
