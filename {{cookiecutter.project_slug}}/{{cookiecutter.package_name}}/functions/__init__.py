"""The Azure Functions of the app, one blueprint each; function_app.py registers them."""
