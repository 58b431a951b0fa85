"""Scale-out past one instance: the timer's drain fans extra passes out through an Azure Storage queue.

Timer functions are singletons, so the tick's drain runs on one instance. At every progress
sample that pass sizes the drains the backlog and the arrivals need (a target lag), and tops
drain tokens up on a Storage queue; the queue-triggered ``drain_input_queue_on_token`` runs one
more drain pass per token, in a slot that caps them. The platform's scale controller already
scales queue triggers on queue length, so tokens become instances, with no scaler of our own.

- ``decision``: drains wanted, arrivals, tokens to put (pure; the template's scale model runs it).
- ``drain_token``: what a token carries: no message, only when and for which queue.
- ``token_queue``: the Storage queue, reached with the ``AzureWebJobsStorage`` connection.
- ``pass_leases``: the slots (Table leases) that count running passes and cap them.
- ``fan_out``: the tick's side: hold the tick's slot, sample, decide, put the tokens.
"""
