"""The release's runtime logic and models; no AWS CDK here."""
