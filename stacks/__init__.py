"""spotgrade's AWS infrastructure (CDK v2): one Construct per concern, composed by one stack.

Never imports TensorFlow or the training package's heavy modules.
"""
