"""The streaming runtime: the only code that reaches into Faust, mode and aiokafka internals."""
