"""The v1 event catalogue."""

from score_contracts.events.base import Event, Headcount, Money
from score_contracts.events.enrolment import (
    CaseStudyPublished,
    EnterpriseDetailsCorrected,
    EnterpriseEnrolled,
    EnterpriseRegistered,
    EnterpriseWithdrawn,
    ModuleCompleted,
    ParticipantsTrained,
    TrainerCertified,
    TrainerRegistered,
    TrainingFeePaid,
)
from score_contracts.events.indicators import MilestoneReached
from score_contracts.events.notifications import NotificationDelivered, NotificationFailed
from score_contracts.events.visits import (
    Improvement,
    VisitCancelled,
    VisitCompleted,
    VisitScheduled,
)

CATALOGUE: tuple[type[Event], ...] = (
    EnterpriseRegistered,
    EnterpriseDetailsCorrected,
    EnterpriseEnrolled,
    ParticipantsTrained,
    TrainingFeePaid,
    ModuleCompleted,
    EnterpriseWithdrawn,
    CaseStudyPublished,
    TrainerRegistered,
    TrainerCertified,
    VisitScheduled,
    VisitCompleted,
    VisitCancelled,
    MilestoneReached,
    NotificationDelivered,
    NotificationFailed,
)
"""Every event type of the v1 catalogue, in the order DESIGN.md lists them."""

BY_TYPE: dict[str, type[Event]] = {cls.event_type(): cls for cls in CATALOGUE}

__all__ = [
    "BY_TYPE",
    "CATALOGUE",
    "CaseStudyPublished",
    "EnterpriseDetailsCorrected",
    "EnterpriseEnrolled",
    "EnterpriseRegistered",
    "EnterpriseWithdrawn",
    "Event",
    "Headcount",
    "Improvement",
    "MilestoneReached",
    "ModuleCompleted",
    "Money",
    "NotificationDelivered",
    "NotificationFailed",
    "ParticipantsTrained",
    "TrainerCertified",
    "TrainerRegistered",
    "TrainingFeePaid",
    "VisitCancelled",
    "VisitCompleted",
    "VisitScheduled",
]
