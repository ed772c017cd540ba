"""The signature book (parapheur): visa circuits, their members and signature profiles.

A ``SignatureCircuit`` runs on one document of a mail. Its members are grouped
in steps by ``position`` (1, 2, ...): approval steps (viseurs) first, then
signature steps (signataires). Every member of a step must decide before the
circuit moves to the next position, so several members at one position approve
in parallel. ``current_step`` 0 means the document is back with its author.

The circuit freezes the document version it shows: ``version_id`` and the
SHA-256 of that version's PDF (``frozen_sha256``). A new version of the document
restarts the approvals (``round`` counts the starts).
"""

from __future__ import annotations

from datetime import datetime

from flask_appbuilder import Model
from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.core.types import UTCDateTime, utcnow

APPROVAL = "approval"
SIGNATURE = "signature"
STEP_KINDS = (APPROVAL, SIGNATURE)

RUNNING = "running"
SIGNED = "signed"
INTERRUPTED = "interrupted"
CIRCUIT_STATES = (RUNNING, SIGNED, INTERRUPTED)

# current_step value while a rejected document waits for its author.
WITH_AUTHOR = 0


class SignatureCircuit(Model):
    __tablename__ = "signature_circuit"
    __table_args__ = (Index("ix_signature_circuit_state_step", "state", "current_step"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    mail_id: Mapped[int] = mapped_column(ForeignKey("mail.id", ondelete="CASCADE"), index=True, nullable=False)
    document_id: Mapped[int] = mapped_column(ForeignKey("document.id", ondelete="CASCADE"), index=True, nullable=False)
    # Id of the circuit model declared in schemas/circuits.yaml; None for a circuit built by hand.
    model_id: Mapped[str | None] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16), nullable=False, default=RUNNING)
    current_step: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    # Number of times the approvals started from step 1: the first start, new versions, resubmissions.
    round: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    version_id: Mapped[int] = mapped_column(ForeignKey("document_version.id"), nullable=False)
    # SHA-256 of the PDF shown to the members; None while the frozen version has no PDF yet.
    frozen_sha256: Mapped[str | None] = mapped_column(String(64), index=True)
    # Status of the mail before the circuit started, given back when it is interrupted.
    previous_status: Mapped[str] = mapped_column(String(40), nullable=False)
    # Status given to the mail once the last signatory has signed.
    status_after_signature: Mapped[str] = mapped_column(String(40), nullable=False)
    started_by_id: Mapped[int] = mapped_column(ForeignKey("ab_user.id"), nullable=False)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    # Set by every decision, so that each one updates the row under its row_version.
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Optimistic lock: of two decisions made at once on the same circuit, the second fails.
    row_version: Mapped[int] = mapped_column(Integer, nullable=False, default=1)

    mail = relationship("Mail")
    document = relationship("Document")
    version = relationship("DocumentVersion")
    started_by = relationship("User", foreign_keys=[started_by_id])
    members: Mapped[list[CircuitMember]] = relationship(
        back_populates="circuit", cascade="all, delete-orphan", order_by="(CircuitMember.position, CircuitMember.id)"
    )

    __mapper_args__ = {"version_id_col": row_version}

    @property
    def last_position(self) -> int:
        return max((member.position for member in self.members), default=0)

    def step(self, position: int) -> list[CircuitMember]:
        return [member for member in self.members if member.position == position]

    def step_kind(self, position: int) -> str | None:
        members = self.step(position)
        return members[0].kind if members else None


class CircuitMember(Model):
    """One approver or signatory at one step of a circuit, and their decision in the current round."""

    __tablename__ = "signature_circuit_member"
    __table_args__ = (Index("ix_signature_circuit_member_user", "user_id", "circuit_id", "position"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    circuit_id: Mapped[int] = mapped_column(
        ForeignKey("signature_circuit.id", ondelete="CASCADE"), index=True, nullable=False
    )
    position: Mapped[int] = mapped_column(Integer, nullable=False)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    user_id: Mapped[int] = mapped_column(ForeignKey("ab_user.id"), nullable=False)
    # Set when the member approved or signed in the current round; cleared by a rejection or a restart.
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Who clicked: the member, or their delegate during an absence.
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("ab_user.id"))

    circuit: Mapped[SignatureCircuit] = relationship(back_populates="members")
    user = relationship("User", foreign_keys=[user_id])
    decided_by = relationship("User", foreign_keys=[decided_by_id])


class SignatureProfile(Model):
    """The title and image of a signatory's visible signature block, shown beside their name."""

    __tablename__ = "signature_profile"

    user_id: Mapped[int] = mapped_column(ForeignKey("ab_user.id", ondelete="CASCADE"), primary_key=True)
    # e.g. "Le secrétaire général de la préfecture".
    title: Mapped[str | None] = mapped_column(Text)
    # PNG or JPEG in the content store.
    image_sha256: Mapped[str | None] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
