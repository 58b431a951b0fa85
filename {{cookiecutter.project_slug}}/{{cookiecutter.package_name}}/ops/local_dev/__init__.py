"""Tools for running the app on a developer's machine: an embedded SQS emulator, a smoke run, sample messages.

Not deployed: ``.funcignore`` and ``deploy/publish_package.py`` (``LOCAL_ONLY``) keep this folder out of the
package (its tools need moto, a dev requirement).
"""
