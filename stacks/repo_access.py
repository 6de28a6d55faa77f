"""Read access to the one Secrets Manager secret that holds a private repository's token (repoTokenSecret).

The secret is the user's (created with `aws secretsmanager create-secret`, docs/aws.md); the stack never creates,
reads or renders its value. The instance's git asks for it at clone time through a credential helper
(stacks/user_data.sh), and `grant_read` lets a role call `secretsmanager:GetSecretValue` on exactly that secret:

- a name: `arn:<partition>:secretsmanager:<region>:<account>:secret:<name>-??????`. Secrets Manager appends a
  hyphen and six random characters to every secret's ARN, and each `?` matches one character, so the pattern
  matches that secret only (a secret named `<name>-abcdef` has an ARN six characters longer);
- an ARN: that ARN as it is (the full ARN the console and `describe-secret` show, with its six characters).

No kms:Decrypt is granted: a secret encrypted with the AWS managed key `aws/secretsmanager` (the default) needs
none; a customer managed key's own key policy must let the instance role decrypt.
"""

from __future__ import annotations

from aws_cdk import ArnFormat, Stack
from aws_cdk import aws_iam as iam
from constructs import Construct

# Secrets Manager's suffix of every secret's ARN: a hyphen and six random characters.
NAME_SUFFIX = "-??????"


class RepoAccess(Construct):
    """`secret` (the name or ARN as given) and `secret_arn` (what the grant names) of repoTokenSecret."""

    def __init__(self, scope: Construct, construct_id: str, *, secret: str) -> None:
        super().__init__(scope, construct_id)
        self.secret = secret
        if secret.startswith("arn:"):
            self.secret_arn = secret
        else:
            self.secret_arn = Stack.of(self).format_arn(
                service="secretsmanager", resource="secret", resource_name=secret + NAME_SUFFIX,
                arn_format=ArnFormat.COLON_RESOURCE_NAME)

    def grant_read(self, role: iam.IRole) -> None:
        """Let `role` read the secret's value (and nothing else of Secrets Manager)."""
        role.add_to_principal_policy(iam.PolicyStatement(
            sid="RepoTokenSecretRead", actions=["secretsmanager:GetSecretValue"], resources=[self.secret_arn]))


__all__ = ["NAME_SUFFIX", "RepoAccess"]
