"""Conversions every part of the contract shares: times, dates, agencies, masked names."""

from __future__ import annotations

from datetime import date, datetime

from google.protobuf.timestamp_pb2 import Timestamp

from gateway._gen.sigw.v1 import common_pb2
from gateway.domain.participants import AgencyKey, AgencyType

__all__ = ["agency_from", "agency_to", "date_from", "date_to", "timestamp"]


def timestamp(value: datetime) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(value)
    return ts


def date_to(value: date) -> common_pb2.Date:
    return common_pb2.Date(year=value.year, month=value.month, day=value.day)


def agency_to(key: AgencyKey) -> common_pb2.AgencyRef:
    return common_pb2.AgencyRef(region_code=key.region, agency_type=common_pb2.AgencyType.ValueType(key.agency_type))


def agency_from(ref: common_pb2.AgencyRef) -> AgencyKey:
    return AgencyKey(ref.region_code, AgencyType(ref.agency_type))


def date_from(d: common_pb2.Date) -> date:
    return date(d.year, d.month, d.day)
