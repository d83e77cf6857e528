"""The JSON Schema of an RFC 8460 §4.4 SMTP TLS report, written from §4.3
and §4.4 (required fields, types, result types, no unknown field names),
shared by test_tlsrpt_schema.sh (reports of the unit test's fixtures) and
relay_tlsrpt.py (reports of a running relay). Needs python3-jsonschema.

Not a test itself: imported by them.
"""
import jsonschema

DATETIME = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$"
STRING = {"type": "string", "minLength": 1}
STRINGS = {"type": "array", "items": STRING}
COUNT = {"type": "integer", "minimum": 0}
# RFC 8460 §4.3 (and the IANA registry it creates).
RESULT_TYPES = [
    "starttls-not-supported", "certificate-host-mismatch",
    "certificate-expired", "certificate-not-trusted", "validation-failure",
    "tlsa-invalid", "dnssec-invalid", "dane-required",
    "sts-policy-fetch-error", "sts-policy-invalid", "sts-webpki-invalid",
]
SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "RFC 8460 section 4.4 SMTP TLS report",
    "type": "object",
    "required": ["organization-name", "date-range", "contact-info",
                 "report-id", "policies"],
    "additionalProperties": False,
    "properties": {
        "organization-name": STRING,
        "date-range": {
            "type": "object",
            "required": ["start-datetime", "end-datetime"],
            "additionalProperties": False,
            "properties": {
                "start-datetime": {"type": "string", "pattern": DATETIME},
                "end-datetime": {"type": "string", "pattern": DATETIME},
            },
        },
        "contact-info": {"type": "string", "pattern": r"^[^@\s]+@[^@\s]+$"},
        "report-id": STRING,
        "policies": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["policy", "summary"],
                "additionalProperties": False,
                "properties": {
                    "policy": {
                        "type": "object",
                        "required": ["policy-type", "policy-domain"],
                        "additionalProperties": False,
                        "properties": {
                            "policy-type": {
                                "enum": ["tlsa", "sts", "no-policy-found"]},
                            "policy-string": STRINGS,
                            "policy-domain": STRING,
                            "mx-host": STRINGS,
                        },
                        # A TLSA or STS policy is reported with its text.
                        "if": {"properties": {
                            "policy-type": {"enum": ["tlsa", "sts"]}}},
                        "then": {"required": ["policy-string"]},
                    },
                    "summary": {
                        "type": "object",
                        "required": ["total-successful-session-count",
                                     "total-failure-session-count"],
                        "additionalProperties": False,
                        "properties": {
                            "total-successful-session-count": COUNT,
                            "total-failure-session-count": COUNT,
                        },
                    },
                    "failure-details": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["result-type",
                                         "failed-session-count"],
                            "additionalProperties": False,
                            "properties": {
                                "result-type": {"enum": RESULT_TYPES},
                                "sending-mta-ip": STRING,
                                "receiving-mx-hostname": STRING,
                                "receiving-mx-helo": STRING,
                                "receiving-ip": STRING,
                                "failed-session-count": {
                                    "type": "integer", "minimum": 1},
                                "additional-information": STRING,
                                "failure-reason-code": STRING,
                            },
                        },
                    },
                },
            },
        },
    },
}

jsonschema.Draft202012Validator.check_schema(SCHEMA)
validator = jsonschema.Draft202012Validator(SCHEMA)


def errors(doc):
    """The schema violations of doc, as short lines ([] when valid)."""
    return ["%s: %s" % ("/".join(map(str, e.absolute_path)), e.message)
            for e in validator.iter_errors(doc)]
