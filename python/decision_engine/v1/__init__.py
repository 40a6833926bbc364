"""Generated gRPC code for the decision_engine.v1 protos (`make generate`); do not edit."""
