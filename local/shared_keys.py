"""The KMS key of another account that a shared AMI's encrypted snapshot needs: its key
policy and grants evaluated across accounts, and CreateGrant on it.

What moto does: key policies are recorded and never checked, and KMS looks a key up in
the caller's account only, even by another account's key ARN (moto.kms.models.KmsBackend).

What AWS documents, and what is emulated here, for a key of account A that encrypts the
snapshot of an AMI A shares with account B of the same region (local.shared_images
decides when a launch of B reaches these checks, and how it fails without them):
- "If you share an AMI with encrypted volumes, you must also share any customer managed
  keys used to encrypt them" (Amazon EC2 User Guide, "Share an AMI with specific AWS
  accounts", https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/sharingamis-explicit.html).
  A launch needs `kms:CreateGrant`, `kms:Decrypt`, `kms:DescribeKey`,
  `kms:GenerateDataKeyWithoutPlainText` and `kms:ReEncrypt` (ReEncryptFrom and
  ReEncryptTo) on the key (Amazon EBS User Guide, "Requirements for Amazon EBS
  encryption", Permissions for users), even when the volume is re-encrypted with a key of
  B: the snapshot is read with A's ("Use encryption with EBS-backed AMIs"). Who needs them
  (Amazon EC2 Auto Scaling User Guide, "Required AWS KMS key policy for use with encrypted
  volumes"):
  - RunInstances: the caller, a principal of B. A's key policy must allow B, as its
    account (`B`, `arn:aws:iam::B:root`) or `*`; B's IAM policies are not evaluated
    (moto's callers may do anything). The CreateGrant EC2 makes for the volume is for an
    AWS resource (`kms:GrantIsForAWSResource` true); its grantee is not known here, so a
    condition on `kms:GranteePrincipal` refuses it.
  - An Auto Scaling launch: B's Auto Scaling service-linked role, whose permissions "do
    not include access to your customer managed keys". A statement naming that role (or
    `*`) allows it; a statement for B's account does not. "If your customer managed key
    is in a different account than the Auto Scaling group, you must use a grant in
    combination with the key policy" (Example 2): B creates a grant on A's key (by its
    ARN) for the role, and the grant's operations allow it. CreateGrant on another
    account's key is emulated for that: the key ARN's account answers, authorized by its
    key policy for a caller of B with `kms:GranteePrincipal`, `kms:GrantOperations` and
    `kms:GrantIsForAWSResource` false ("Controlling access to grants", AWS KMS Developer
    Guide), else AccessDeniedException ("User: arn:aws:iam::B:root is not authorized to
    perform: kms:CreateGrant on resource: <key ARN> because no resource-based policy
    allows the kms:CreateGrant action", the form of the IAM User Guide's "Access denied
    error messages", with B's root for the caller this module cannot name).
  Key policies are evaluated with local.iam_policy (explicit Deny wins, action wildcards
  such as `kms:ReEncrypt*`, condition operators as IAM documents them; request context
  `aws:PrincipalAccount` B and, for the role, `aws:PrincipalArn`); a key that is missing
  or not Enabled is refused.

Not emulated: B's own IAM policies, so a key policy statement naming one user or role of
B (other than the Auto Scaling role) never covers a RunInstances caller, which can refuse
what AWS would allow; other KMS operations on another account's key; grant constraints,
grant tokens and the narrower CreateGrant a grant gives.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from typing import Any

from moto.ec2.models.amis import Ami
from moto.kms.exceptions import AccessDeniedException, NotFoundException
from moto.kms.models import Key, KmsBackend, kms_backends

from local.iam_policy import (
    Decision,
    Request,
    UnsupportedPolicyError,
    evaluate,
    statements_of,
)

# Amazon EBS User Guide, "Requirements for Amazon EBS encryption" ("kms:ReEncrypt" is the
# pair of IAM actions below).
VOLUME_ACTIONS = (
    "kms:CreateGrant",
    "kms:Decrypt",
    "kms:DescribeKey",
    "kms:GenerateDataKeyWithoutPlaintext",
    "kms:ReEncryptFrom",
    "kms:ReEncryptTo",
)


def _names(statement: Mapping[str, Any], account: str, role: str | None) -> bool:
    """Whether the statement's Principal covers the principal: a caller of `account`
    (any principal the account's IAM may allow, as the account's root ARN delegates to
    it) or, with `role`, that service-linked role of it, whose permissions "do not include
    access to your customer managed keys" (Amazon EC2 Auto Scaling User Guide, "Required
    AWS KMS key policy for use with encrypted volumes"), so only a statement naming it
    (or `*`) covers it."""
    if "NotPrincipal" in statement:
        raise UnsupportedPolicyError(f"NotPrincipal is not evaluated: {statement}")
    principal = statement.get("Principal")
    if principal == "*":
        return True
    if not isinstance(principal, Mapping):
        raise UnsupportedPolicyError(f"key policy statement without Principal: {statement}")
    named = principal.get("AWS", [])
    root = re.compile(rf"arn:aws[a-z-]*:iam::{account}:root")
    return any(
        p in ("*", role) if role else p in ("*", account) or root.fullmatch(p) is not None
        for p in ([named] if isinstance(named, str) else named)
    )


def _decision(
    key: Key, account: str, role: str | None, action: str, keys: Mapping[str, list[str]]
) -> Decision:
    """The key policy's decision on `action` by the principal (see `_names`), with the
    request's condition `keys`."""
    statements = [s for s in statements_of(key.policy) if _names(s, account, role)]
    context = {"aws:PrincipalAccount": [account], **keys}
    if role:
        context["aws:PrincipalArn"] = [role]
    return evaluate([{"Statement": statements}], Request(action, key.arn, context))


def key_allows(key: Key, account: str, role: str | None = None) -> bool:
    """Whether `key` lets a caller of `account` (or, with `role`, that service-linked
    role) use it for a volume: every action of VOLUME_ACTIONS allowed by the key policy
    or, for `role`, by a grant to it; an explicit Deny in the key policy wins. The
    CreateGrant that EC2 makes for the volume is for an AWS resource."""
    if key.key_state != "Enabled":
        return False
    granted = {
        operation
        for grant in key.grants.values()
        if role is not None and grant.grantee_principal == role
        for operation in grant.operations
    }
    for action in VOLUME_ACTIONS:
        for_volume = {"kms:GrantIsForAWSResource": ["true"]} if action == "kms:CreateGrant" else {}
        decision = _decision(key, account, role, action, for_volume)
        if decision is Decision.EXPLICIT_DENY:
            return False
        if decision is Decision.IMPLICIT_DENY and action.removeprefix("kms:") not in granted:
            return False
    return True


def find_key(reference: str, account: str, region: str) -> Key | None:
    """The KMS key a key id, alias or ARN names: an ARN's account and region, else
    `account` and `region`. None when there is no such key."""
    if reference.startswith("arn:"):
        region, account = reference.split(":")[3:5]
    kms = kms_backends[account][region]
    identifier = kms.get_key_id(kms.get_alias_name(reference))
    if identifier.startswith("alias/"):
        identifier = kms.get_key_id(kms.get_key_id_from_alias(identifier) or "")
    key: Key | None = kms.keys.get(identifier)
    return key


def snapshot_key(ami: Ami) -> Key | None:
    """The KMS key that encrypts the AMI's snapshot (the owner's EBS default key when the
    snapshot names none), or None when there is no such key."""
    owner = ami.ec2_backend
    reference = ami.ebs_snapshot.kms_key_id or owner.default_kms_key_id
    return find_key(reference, ami.owner_id, owner.region_name) if reference else None


def _create_grant(create: Callable[..., tuple[str, str]]) -> Callable[..., tuple[str, str]]:
    """CreateGrant on another account's key, named by its ARN ("To specify a KMS key in a
    different AWS account, you must use the key ARN", CreateGrant API reference), as AWS
    KMS authorizes it: by that key's policy, for a caller of this account, with the
    request's kms:GranteePrincipal and kms:GrantOperations ("Controlling access to
    grants", AWS KMS Developer Guide); the caller, not a service, creates it
    (kms:GrantIsForAWSResource false). moto looks keys up in the caller's account only."""

    @functools.wraps(create)
    def create_grant(  # noqa: PLR0917 - moto's own signature
        self: KmsBackend,
        key_id: str,
        grantee: str,
        operations: list[str],
        name: str,
        constraints: dict[str, Any],
        retiring_principal: str,
    ) -> tuple[str, str]:
        if not key_id.startswith("arn:") or key_id.split(":")[4] == self.account_id:
            return create(self, key_id, grantee, operations, name, constraints, retiring_principal)
        key = find_key(key_id, self.account_id, self.region_name)
        if key is None:
            raise NotFoundException(f"Key '{key_id}' does not exist")
        decision = _decision(
            key,
            self.account_id,
            None,
            "kms:CreateGrant",
            {
                "kms:GranteePrincipal": [grantee],
                "kms:GrantOperations": list(operations),
                "kms:GrantIsForAWSResource": ["false"],
            },
        )
        if decision is not Decision.ALLOWED:
            raise AccessDeniedException(
                f"User: arn:aws:iam::{self.account_id}:root is not authorized to perform: "
                f"kms:CreateGrant on resource: {key.arn} because no resource-based policy "
                "allows the kms:CreateGrant action"
            )
        grant = key.add_grant(
            name,
            grantee,
            operations,
            constraints=constraints,
            retiring_principal=retiring_principal,
        )
        return grant.id, grant.token

    return create_grant


@functools.cache
def install() -> None:
    """Let CreateGrant reach another account's key by its ARN in this process (once)."""
    KmsBackend.create_grant = _create_grant(KmsBackend.create_grant)  # type: ignore[method-assign]
