"""Pinned versions that tooling needs without importing the cdktf bindings."""

#: hashicorp/aws version the bindings were generated for (cdktf-cdktf-provider-aws 20.1.0).
AWS_PROVIDER_VERSION = "5.100.0"
#: Runtime of every Lambda function in this project.
LAMBDA_PYTHON_RUNTIME = "python3.12"
