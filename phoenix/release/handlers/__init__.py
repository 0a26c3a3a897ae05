"""One module per release Lambda function: parse, call the runtime, return."""
