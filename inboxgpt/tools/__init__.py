"""Tools the model may use before it answers: HTTP calls the owner declares in TOOLS_FILE (order status, table
booking...), and built-in ones (a lead saved, the conversation handed to a person).

spec.py reads and checks the file; schema.py checks the model's arguments against each tool's parameters;
http.py makes a call safely; leads.py keeps leads; toolbox.py offers the tools to the model and runs its calls.
"""
