"""The OCA's CSMS test cases, per certification profile, and which of them evhub's tests play.

evhub is not certified by the Open Charge Alliance. This is the list of the CSMS test cases
of the OCA's test case documents (OCPP 2.0.1 Part 6, and the OCPP 1.6 Compliancy Testing Tool
test case document, Central System side), each with the profile it belongs to. What is
"covered" is not written here: it is computed from the names of the test functions in
tests/integrations/ocpp/test_*.py, read with `ast` (nothing is imported). A test covers the
cases its name names: `test_tc_b_01_csms_...` covers TC_B_01_CSMS, `test_tc_e_17_20_csms_...`
covers TC_E_17_CSMS and TC_E_20_CSMS, `test_tc_023_1_csms_...` covers TC_023_1_CSMS and
`test_tc_043_4_5_csms_...` covers TC_043_4_CSMS and TC_043_5_CSMS.

    .venv/bin/python -m tests.integrations.ocpp.certification           # print the section
    .venv/bin/python -m tests.integrations.ocpp.certification --write   # replace it in README

Sources: the case ids and names are those of OCPP 2.0.1 Part 6 (Test Cases, FINAL 2023-06-30)
and of the OCPP 1.6 CTT test case document (Central System), as published per case on
ocpplab.com and in public OCTT result lists. The OCA's test plan makes a case mandatory or
conditional per the features a CSMS declares; here a profile lists every CSMS case of its
functional blocks, so "covered / cases" is a strict measure. The profile of each block follows
the OCA certification profiles: Core (A basic authentication and server TLS, B, C, E, F,
G, J, L, P), Advanced
Security (A client certificates and passwords, M), Local Auth List Management (D), Smart
Charging (K), Advanced Device Management (N), Reservation (H), Advanced User Interface (O;
tariff and cost, I, out of scope) and ISO 15118 support (out of scope).
"""

from __future__ import annotations

import ast
import re
import sys
import textwrap
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

TESTS = Path(__file__).resolve().parent
README = TESTS.parents[2] / "README.md"
HEADING = "### OCPP certification profiles"
NEXT_HEADING = re.compile(r"\n#{2,3} ")

COVERED = "covered"
NOT_YET = "not yet"
OUT_OF_SCOPE = "out of scope"

CORE = "Core"
ADVANCED_SECURITY = "Advanced Security"
LOCAL_AUTH_LIST = "Local Auth List Management"
SMART_CHARGING = "Smart Charging"
DEVICE_MANAGEMENT = "Advanced Device Management"
RESERVATION = "Reservation"
USER_INTERFACE = "Advanced User Interface"
ISO_15118 = "ISO 15118 support"

PROFILES_201 = (
    CORE,
    ADVANCED_SECURITY,
    LOCAL_AUTH_LIST,
    SMART_CHARGING,
    DEVICE_MANAGEMENT,
    RESERVATION,
    USER_INTERFACE,
    ISO_15118,
)
# The 1.6 CTT groups its cases by the 1.6 feature profiles and the security whitepaper.
PROFILES_16 = (
    CORE,
    "Firmware Management",
    LOCAL_AUTH_LIST,
    RESERVATION,
    "Remote Trigger",
    SMART_CHARGING,
    "Security (whitepaper)",
)

BLOCKS = {
    "A": "A Security",
    "B": "B Provisioning",
    "C": "C Authorization",
    "D": "D Local authorization list",
    "E": "E Transactions",
    "F": "F Remote control",
    "G": "G Availability",
    "H": "H Reservation",
    "I": "I Tariff and cost",
    "J": "J Meter values",
    "K": "K Smart charging",
    "L": "L Firmware management",
    "M": "M Certificate management",
    "N": "N Diagnostics",
    "O": "O Display message",
    "P": "P Data transfer",
}

ISO = "ISO 15118"
TARIFF = "tariff and cost"


@dataclass(frozen=True, slots=True)
class Case:
    """One CSMS test case of a test case document."""

    id: str
    name: str
    profile: str
    version: str  # "2.0.1" | "1.6"
    out_of_scope: str = ""  # why, when evhub does not mean to play it

    @property
    def block(self) -> str:
        """The functional block (2.0.1) or the profile (1.6) it is counted under."""
        if self.version == "1.6":
            return self.profile
        return BLOCKS[self.id.split("_")[1]]


def _cases(version: str, profile: str, rows: str, out_of_scope: str = "") -> list[Case]:
    """Cases from lines "<id without TC_ and _CSMS> <name>"; a line that does not start
    with an id goes on with the name above."""
    pairs: list[list[str]] = []
    for line in rows.strip().splitlines():
        first, _, rest = line.strip().partition(" ")
        if re.fullmatch(r"[A-Z]_\d{2}|\d{3}(?:_\d)?", first):
            pairs.append([first, rest])
        else:
            pairs[-1][1] += " " + line.strip()
    return [Case(f"TC_{i}_CSMS", name, profile, version, out_of_scope) for i, name in pairs]


V201 = "2.0.1"
V16 = "1.6"

CASES: tuple[Case, ...] = (
    # --- OCPP 2.0.1 ---------------------------------------------------------------------
    *_cases(
        V201,
        CORE,
        """
        A_01 Basic Authentication - Valid username/password combination
        A_02 Basic Authentication - Username does not equal ChargingStationId
        A_03 Basic Authentication - Invalid password
        A_04 TLS - server-side certificate - Valid certificate
        A_06 TLS - server-side certificate - TLS version too low
        B_01 Cold Boot Charging Station - Accepted
        B_02 Cold Boot Charging Station - Pending
        B_06 Get Variables - single value
        B_07 Get Variables - multiple values
        B_08 Get Variables - limit to maximum number of values
        B_09 Set Variables - single value
        B_10 Set Variables - multiple values
        B_12 Get Base Report - ConfigurationInventory
        B_13 Get Base Report - FullInventory
        B_14 Get Base Report - SummaryInventory
        B_18 Get Custom Report - with componentCriteria and component/variables
        B_20 Reset Charging Station - Without ongoing transaction - OnIdle
        B_21 Reset Charging Station - With Ongoing Transaction - OnIdle
        B_22 Reset Charging Station - With Ongoing Transaction - Immediate
        B_25 Reset EVSE - Without ongoing transaction
        B_26 Reset EVSE - With Ongoing Transaction - OnIdle
        B_27 Reset EVSE - With Ongoing Transaction - Immediate
        B_30 Cold Boot Charging Station - Pending/Rejected - SecurityError
        B_31 Cold Boot Charging Station - Pending/Rejected - TriggerMessage
        B_42 Set new NetworkConnectionProfile - Accepted
        B_44 Set new NetworkConnectionProfile - Failed
        B_58 WebSocket Subprotocol validation
        C_02 Local start transaction - Authorization Invalid/Unknown
        C_06 Local start transaction - Authorization Blocked
        C_07 Local start transaction - Authorization Expired
        C_08 Authorization through authorization cache - Accepted
        C_20 Authorization through authorization cache - Invalid
        C_37 Clear Authorization Data in Authorization Cache - Accepted
        C_38 Clear Authorization Data in Authorization Cache - Rejected
        C_39 Authorization by GroupId - Success
        C_40 Authorization by GroupId - Success with Local Authorization List
        C_43 Authorization by GroupId - Invalid status with Local Authorization List
        C_47 Stop Transaction with a Master Pass - With UI - All transactions
        C_48 Stop Transaction with a Master Pass - With UI - Specific transactions
        C_49 Stop Transaction with a Master Pass - Without UI
        E_01 Start transaction options - PowerPathClosed
        E_02 Start transaction options - EnergyTransfer
        E_03 Local start transaction - Cable plugin first - Success
        E_04 Local start transaction - Authorization first - Success
        E_07 Stop transaction options - PowerPathClosed - Local stop
        E_08 Stop transaction options - EnergyTransfer stopped - StopAuthorized
        E_09 Start transaction options - EVConnected
        E_10 Start transaction options - Authorized - Local
        E_11 Start transaction options - DataSigned
        E_12 Start transaction options - ParkingBayOccupied
        E_14 Stop transaction options - EVDisconnected - Charging Station side
        E_15 Stop transaction options - StopAuthorized - Local
        E_16 Stop transaction options - Deauthorized - Invalid idToken
        E_17 Stop transaction options - Deauthorized - EV side disconnect
        E_19 Stop transaction options - ParkingBayUnoccupied
        E_20 Stop transaction options - EVDisconnected - EV side
        E_21 Stop transaction options - StopAuthorized - Remote
        E_22 Stop transaction options - EnergyTransfer stopped - SuspendedEV
        E_26 Disconnect cable on EV-side - Suspend transaction
        E_29 Check Transaction status - ongoing - with messages in queue
        E_30 Check Transaction status - ongoing - without messages in queue
        E_31 Check Transaction status - ended - with messages in queue
        E_33 Check Transaction status - without transactionId - with messages in queue
        E_34 Check Transaction status - without transactionId - without messages in queue
        E_38 Local start transaction - EV not ready
        E_39 Stop transaction options - Deauthorized - timeout
        E_53 Reset Sequence Number - CSMS accepting seqNo = 0 at start of transaction
        F_01 Remote start transaction - Cable plugin first
        F_02 Remote start transaction - Remote start first - AuthorizeRemoteStart is true
        F_03 Remote start transaction - Remote start first - AuthorizeRemoteStart is false
        F_04 Remote start transaction - Remote start first - Cable plugin timeout
        F_06 Remote unlock Connector - Without ongoing transaction - Accepted
        F_11 Trigger message - MeterValues - Specific EVSE
        F_12 Trigger message - MeterValues - All EVSE
        F_13 Trigger message - TransactionEvent - Specific EVSE
        F_14 Trigger message - TransactionEvent - All EVSE
        F_15 Trigger message - LogStatusNotification - Idle
        F_18 Trigger message - FirmwareStatusNotification - Idle
        F_20 Trigger message - Heartbeat
        F_23 Trigger message - StatusNotification - Specific EVSE - Available
        F_24 Trigger message - StatusNotification - Specific EVSE - Occupied
        F_27 Trigger message - NotImplemented
        G_01 Status Notification
        G_03 Change Availability EVSE - Operative to inoperative
        G_04 Change Availability EVSE - Inoperative to operative
        G_05 Change Availability Charging Station - Operative to inoperative
        G_06 Change Availability Charging Station - Inoperative to operative
        G_07 Change Availability Connector - Operative to inoperative
        G_08 Change Availability Connector - Inoperative to operative
        G_11 Change Availability EVSE - With ongoing transaction
        G_14 Change Availability Charging Station - With ongoing transaction
        G_17 Change Availability Connector - With ongoing transaction
        G_20 Connector status Notification - Lock Failure
        J_01 Clock-aligned Meter Values - No transaction ongoing
        J_02 Clock-aligned Meter Values - Transaction ongoing
        J_03 Clock-aligned Meter Values - EventType Ended
        J_04 Clock-aligned Meter Values - Signed
        J_07 Sampled Meter Values - EventType Started - EVSE known
        J_08 Sampled Meter Values - Context Transaction.Begin - EVSE not known
        J_09 Sampled Meter Values - EventType Updated
        J_10 Sampled Meter Values - EventType Ended
        J_11 Sampled Meter Values - Signed
        L_01 Secure Firmware Update - Installation successful
        L_02 Secure Firmware Update - InstallScheduled
        L_03 Secure Firmware Update - DownloadScheduled
        L_04 Secure Firmware Update - RevokedCertificate
        L_05 Secure Firmware Update - InvalidCertificate
        L_06 Secure Firmware Update - InvalidSignature
        L_07 Secure Firmware Update - DownloadFailed
        L_08 Secure Firmware Update - InstallVerificationFailed
        L_09 Secure Firmware Update - InstallationFailed
        L_10 Secure Firmware Update - AcceptedCanceled
        L_11 Secure Firmware Update - Unable to cancel
        L_13 Secure Firmware Update - Unable to download/install firmware with ongoing transaction
        L_17 Publish Firmware - Published
        L_19 Publish Firmware - Invalid Checksum
        L_20 Publish Firmware - PublishFailed
        L_21 Unpublish Firmware - Unpublished
        L_22 Unpublish Firmware - NoFirmware
        L_23 Unpublish Firmware - Download Ongoing
        L_24 Publish Firmware - Download failed
        P_02 Data Transfer to CSMS - Rejected/Unknown
        P_03 CustomData - Receive custom data
        """,
    ),
    *_cases(
        V201,
        ADVANCED_SECURITY,
        """
        A_07 TLS - Client-side certificate - valid certificate
        A_08 TLS - Client-side certificate - Invalid certificate
        A_09 Update Charging Station Password for HTTP Basic Authentication - Accepted
        A_10 Update Charging Station Password for HTTP Basic Authentication - Rejected
        A_11 Update Charging Station Certificate by request of CSMS - Success -
            Charging Station Certificate
        A_14 Update Charging Station Certificate by request of CSMS - Invalid certificate
        A_19 Upgrade Charging Station Security Profile - Accepted
        M_01 Install CA certificate - CSMSRootCertificate
        M_02 Install CA certificate - ManufacturerRootCertificate
        M_05 Install CA certificate - Failed
        M_12 Retrieve certificates - CSMSRootCertificate
        M_13 Retrieve certificates - ManufacturerRootCertificate
        M_17 Retrieve certificates - CSMSRoot & ManufacturerRoot
        M_18 Retrieve certificates - All certificateTypes
        M_19 Retrieve certificates - No matching certificate found
        M_20 Delete certificate from CS - Success
        M_21 Delete certificate from CS - Failed
        M_24 Get Charging Station Certificate status - Success
        """,
    ),
    *_cases(
        V201,
        LOCAL_AUTH_LIST,
        """
        D_01 Send Local Authorization List - Full
        D_02 Send Local Authorization List - Differential Update
        D_03 Send Local Authorization List - Differential Remove
        D_04 Send Local Authorization List - Full with empty list
        D_08 Get Local List Version - Success
        D_09 Get Local List Version - No list available
        """,
    ),
    *_cases(
        V201,
        SMART_CHARGING,
        """
        K_01 Set Charging Profile - TxDefaultProfile - Specific EVSE
        K_02 Set Charging Profile - TxProfile without ongoing transaction on the specified EVSE
        K_03 Set Charging Profile - ChargingStationMaxProfile
        K_04 Replace charging profile - With chargingProfileId
        K_05 Clear Charging Profile - With chargingProfileId
        K_06 Clear Charging Profile - With stackLevel/purpose combination for one profile
        K_08 Clear Charging Profile - Without previous charging profile
        K_10 Set Charging Profile - TxDefaultProfile - All EVSE
        K_15 Set Charging Profile - Not Supported
        K_19 Set Charging Profile - ChargingProfileKind is Recurring
        K_29 Get Charging Profile - EvseId 0
        K_30 Get Charging Profile - EvseId > 0
        K_31 Get Charging Profile - No EvseId
        K_32 Get Charging Profile - chargingProfileId
        K_33 Get Charging Profile - EvseId > 0 + stackLevel
        K_34 Get Charging Profile - EvseId > 0 + chargingLimitSource
        K_35 Get Charging Profile - EvseId > 0 + chargingProfilePurpose
        K_36 Get Charging Profile - EvseId > 0 + chargingProfilePurpose + stackLevel
        K_37 Remote start transaction with charging profile - Success
        K_43 Get Composite Schedule - Specific EVSE
        K_44 Get Composite Schedule - Charging Station
        K_48 EMS Control - Set / Update External Charging Limit (not on a transaction)
        K_50 EMS Control - Reset / release external charging limit - Without ongoing transaction
        K_51 EMS Control - Reset / release external charging limit - With ongoing transaction
        K_52 EMS Control - Set / Update External Charging Limit - Report
        K_60 Set Charging Profile - TxProfile with ongoing transaction on the specified EVSE
        K_70 Set Charging Profile - Multiple Profiles
        """,
    ),
    *_cases(
        V201,
        DEVICE_MANAGEMENT,
        """
        N_01 Get Monitoring Report - with monitoringCriteria
        N_02 Get Monitoring Report - with component/variable
        N_03 Get Monitoring Report - with criteria and component/variable
        N_05 Set Monitoring Base - success
        N_08 Set Variable Monitoring - One element
        N_09 Set Variable Monitoring - Multiple elements
        N_16 Set Monitoring Level - Success
        N_17 Set Monitoring Level - Out of range
        N_18 Clear Monitoring - Too many elements
        N_21 Alert Event - HardWiredMonitor
        N_24 Set Variable Monitoring - Periodic event
        N_25 Retrieve Log Information - Diagnostics Log - Success
        N_27 Get Customer Information - Accepted + data
        N_28 Get Customer Information - Accepted + no data
        N_29 Get Customer Information - Not Accepted
        N_30 Clear Customer Information - Clear and report + data
        N_31 Clear Customer Information - Clear and report + no data
        N_32 Clear Customer Information - Clear and no report
        N_34 Retrieve Log Information - Rejected
        N_35 Retrieve Log Information - Security Log - Success
        N_36 Retrieve Log Information - Second Request
        N_44 Clear Monitoring - Rejected
        N_46 Clear Customer Information - Update Local Authorization List
        N_47 Get Monitoring Report - Report all
        N_48 Alert Event - Variable monitoring on write only
        N_49 Alert Event - LowerThreshold/UpperThreshold cleared after reboot
        N_50 Alert Event - Periodic Triggered
        N_60 Get Monitoring Report - with criteria and list of components/variables
        N_62 Clear Customer Information - customerIdentifier
        N_63 Clear Customer Information - customerCertificate
        """,
    ),
    *_cases(
        V201,
        RESERVATION,
        """
        H_01 Reserve a specific EVSE - Accepted - Valid idToken
        H_07 Reserve a specific EVSE - Reservation Ended / not used
        H_08 Reserve an unspecified EVSE - Accepted
        H_14 Reserve an unspecified EVSE - EVSEs equals reservations
        H_15 Reserve a connector with a specific type - Success
        H_17 Cancel reservation of an EVSE - Success
        H_19 Reserve a specific EVSE - Use a reserved EVSE with GroupId
        H_20 Charging Station cancels reservation when Faulted
        H_22 Reserve a specific EVSE - Configured to Reject
        """,
    ),
    *_cases(
        V201,
        USER_INTERFACE,
        """
        O_01 Set Display Message - Success
        O_02 Get all Display Messages - Success
        O_03 Get all Display Messages - No DisplayMessages configured
        O_04 Clear Display Message - Success
        O_05 Clear Display Message - Unknown Key
        O_06 Set Display Message - Specific transaction - Success
        O_07 Get a Specific Display Message - Id
        O_08 Get a Specific Display Message - Priority
        O_09 Get a Specific Display Message - State
        O_10 Set Display Message - Specific transaction - UnknownTransaction
        O_11 Get a Specific Display Message - Unknown parameters
        O_12 Set Display Message - Replace DisplayMessage
        O_13 Set Display Message - Display message at StartTime
        O_14 Set Display Message - Remove message after EndTime
        O_17 Set Display Message - NotSupportedPriority
        O_18 Set Display Message - NotSupportedState
        O_19 Set Display Message - NotSupportedMessageFormat
        O_25 Set Display Message - Send Specific state
        O_26 Set Display Message - Rejected
        O_27 Set Display Message - Specific transaction - StartTime
        O_28 Set Display Message - Specific transaction - EndTime
        """,
    ),
    *_cases(
        V201,
        USER_INTERFACE,
        """
        I_01 Show EV Driver running total cost during charging - costUpdatedRequest
        I_02 Show EV Driver Final Total Cost After Charging
        """,
        out_of_scope=TARIFF,
    ),
    *_cases(
        V201,
        ISO_15118,
        """
        A_12 Update Charging Station Certificate by request of CSMS - Success - V2G Certificate
        C_50 Authorization using Contract Certificates 15118 - Online - Local validation - Accepted
        C_51 Authorization using Contract Certificates 15118 - Online - Local validation - Rejected
        C_52 Authorization using Contract Certificates 15118 - Online - Central validation -
            Accepted
        K_53 Charging with load leveling based on High Level Communication - Success
        K_55 Charging with load leveling based on High Level Communication -
            EV charging profile exceeds limits
        K_57 Renegotiating a Charging Schedule - Initiated by EV
        K_58 Renegotiating a Charging Schedule - Initiated by CSMS
        K_59 Renegotiating a Charging Schedule - Initiated by CSMS - Send NotifyEVChargingNeeds
        M_03 Install CA certificate - V2GRootCertificate
        M_04 Install CA certificate - MORootCertificate
        M_14 Retrieve certificates - V2GRootCertificate
        M_15 Retrieve certificates - V2GCertificateChain
        M_16 Retrieve certificates - MORootCertificate
        M_26 Certificate Installation EV - Success
        M_28 Certificate Update EV - Success
        """,
        out_of_scope=ISO,
    ),
    # --- OCPP 1.6 -----------------------------------------------------------------------
    *_cases(
        V16,
        CORE,
        """
        001 Cold Boot Charge Point
        003 Regular Charging Session - Plugin First
        004_1 Regular Charging Session - Identification First
        004_2 Regular Charging Session - Identification First - ConnectionTimeOut
        005_1 EV Side Disconnected - StopTransactionOnEVSideDisconnect
        007 Regular Start Charging Session - Cached Id
        010 Remote Start Charging Session - Cable Plugged in First
        011_1 Remote Start Charging Session - Remote Start First
        011_2 Remote Start Charging Session - Time Out
        012 Remote Stop Charging Session
        013 Hard Reset
        014 Soft Reset
        017_1 Unlock Connector - No Charging Session (Not Fixed Cable)
        017_2 Unlock Connector - No Charging Session (Fixed Cable)
        018_1 Unlock Connector - With Charging Session (Not Fixed Cable)
        019_1 Retrieve All Configuration Keys
        019_2 Retrieve Specific Configuration Key
        021 Change/Set Configuration
        023_1 Start Charging Session - Authorize Invalid
        023_2 Start Charging Session - Authorize Expired
        023_3 Start Charging Session - Authorize Blocked
        024 Start Charging Session Lock Failure
        026 Remote Start Charging Session - Rejected
        028 Remote Stop Transaction - Rejected
        030 Unlock Connector - Unlock Failure
        031 Unlock Connector - Unknown Connector
        032_1 Power Failure Boot - Stop Transactions
        037_1 Offline Start Transaction - Valid IdTag
        037_3 Offline Start Transaction - Invalid IdTag - StopTransactionOnInvalidId
        039 Offline Transaction
        040_1 Configuration Keys - NotSupported
        040_2 Configuration Keys - Invalid Value
        061 Clear Authorization Data in Authorization Cache
        064 Data Transfer to a Central System
        """,
    ),
    *_cases(
        V16,
        "Firmware Management",
        """
        044_1 Firmware Update - Download and Install
        044_2 Firmware Update - Download Failed
        044_3 Firmware Update - Installation Failed
        045_1 Get Diagnostics
        045_2 Get Diagnostics - Upload Failed
        """,
    ),
    *_cases(
        V16,
        LOCAL_AUTH_LIST,
        """
        042_1 Get Local List Version - Not Supported
        042_2 Get Local List Version - Empty
        043_1 Send Local Authorization List - NotSupported
        043_3 Send Local Authorization List - Failed
        043_4 Send Local Authorization List - Full
        043_5 Send Local Authorization List - Differential
        """,
    ),
    *_cases(
        V16,
        RESERVATION,
        """
        046 Reservation of a Connector - Transaction
        047 Reservation of a Connector - Expire
        048_1 Reservation of a Connector - Faulted
        048_2 Reservation of a Connector - Occupied
        048_3 Reservation of a Connector - Unavailable
        048_4 Reservation of a Connector - Rejected
        049 Reservation of a Charge Point - Transaction
        051 Cancel Reservation
        052 Cancel Reservation - Rejected
        053 Use a Reserved Connector with parentIdTag
        """,
    ),
    *_cases(
        V16,
        "Remote Trigger",
        """
        054 Trigger Message
        055 Trigger Message - Rejected
        """,
    ),
    *_cases(
        V16,
        SMART_CHARGING,
        """
        056 Central Smart Charging - TxDefaultProfile
        057 Central Smart Charging - TxProfile
        059 Remote Start Transaction with Charging Profile
        066 Get Composite Schedule
        067 Clear Charging Profile
        """,
    ),
    *_cases(
        V16,
        "Security (whitepaper)",
        """
        073 Update Charge Point Password for HTTP Basic Authentication
        074 Update Charge Point Certificate by Request of Central System
        075_1 Install Certificate - ManufacturerRootCertificate
        075_2 Install Certificate - CentralSystemRootCertificate
        076 Delete a Specific Certificate from the Charge Point
        077 Invalid ChargePointCertificate Security Event
        078 Invalid CentralSystemCertificate Security Event
        079 Get Security Log
        080 Secure Firmware Update
        081 Secure Firmware Update - Invalid Signature
        083 Upgrade Charge Point Security Profile - Accepted
        085 Basic Authentication - Valid username/password
        086 TLS - Server-side Certificate - Valid Certificate
        087 TLS - Client-side Certificate - Valid Certificate
        088 WebSocket Subprotocol Negotiation
        """,
    ),
)

BY_ID: dict[str, Case] = {case.id: case for case in CASES}


# --- what the tests cover ------------------------------------------------------------------

_TEST_NAME = re.compile(r"test_tc_(?P<ids>[a-z0-9_]+?)_csms(?:_|$)")


def tc_test_names(directory: Path) -> dict[str, str]:
    """The test functions and methods of directory/test_*.py whose name starts with
    `test_tc_`, read with `ast` (nothing is imported), each with the file it is in."""
    found: dict[str, str] = {}
    for path in sorted(directory.glob("test_*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and (
                node.name.startswith("test_tc_")
            ):
                found[node.name] = path.name
    return found


def case_ids(test_name: str) -> list[str]:
    """The case ids a test's name names; [] when the name does not follow the rule.

    2.0.1: a block letter, then one or more case numbers (`test_tc_e_17_20_csms_x` is
    TC_E_17_CSMS and TC_E_20_CSMS). 1.6: a three-digit case, then its variants if any
    (`test_tc_043_4_5_csms_x` is TC_043_4_CSMS and TC_043_5_CSMS; `test_tc_021_csms_x` is
    TC_021_CSMS)."""
    match = _TEST_NAME.match(test_name)
    if match is None:
        return []
    parts = match["ids"].split("_")
    if re.fullmatch(r"[a-z]", parts[0]):
        numbers = parts[1:]
        if not numbers or not all(re.fullmatch(r"\d{2,3}", n) for n in numbers):
            return []
        return [f"TC_{parts[0].upper()}_{n}_CSMS" for n in numbers]
    ids: list[str] = []
    case = ""
    variants: list[str] = []
    for part in [*parts, "end"]:
        if re.fullmatch(r"\d{1,2}", part) and case:
            variants.append(part)
            continue
        if case:
            ids.extend([f"TC_{case}_{v}_CSMS" for v in variants] or [f"TC_{case}_CSMS"])
        if re.fullmatch(r"\d{3}", part):
            case, variants = part, []
        elif part != "end":
            return []
    return ids


def coverage(directory: Path = TESTS) -> tuple[dict[str, list[str]], list[str]]:
    """(case id -> the tests that cover it, tests whose name names no listed case)."""
    covered: dict[str, list[str]] = {}
    unmatched: list[str] = []
    for name in tc_test_names(directory):
        ids = case_ids(name)
        known = [case_id for case_id in ids if case_id in BY_ID]
        if not ids or len(known) != len(ids):
            unmatched.append(name)
        for case_id in known:
            covered.setdefault(case_id, []).append(name)
    return covered, unmatched


def status(case: Case, covered: Mapping[str, object]) -> str:
    """covered | not yet | out of scope."""
    if case.id in covered:
        return COVERED
    return OUT_OF_SCOPE if case.out_of_scope else NOT_YET


def rows(covered: Mapping[str, object]) -> list[tuple[str, str, str, str, str]]:
    """(test case id, name, profile, status, note) of every listed case."""
    result = []
    for case in CASES:
        note = f"OCPP {case.version}"
        if case.out_of_scope:
            note += f"; {case.out_of_scope}"
        result.append((case.id, case.name, case.profile, status(case, covered), note))
    return result


def block_counts(covered: Mapping[str, object]) -> dict[tuple[str, str, str], tuple[int, int]]:
    """(version, profile, block) -> (covered, cases), in the order of the list."""
    counts: dict[tuple[str, str, str], tuple[int, int]] = {}
    for case in _ordered():
        key = (case.version, case.profile, case.block)
        done, total = counts.get(key, (0, 0))
        counts[key] = (done + (case.id in covered), total + 1)
    return counts


def _ordered() -> list[Case]:
    def key(case: Case) -> tuple[int, int, str, str]:
        profiles = PROFILES_201 if case.version == V201 else PROFILES_16
        return (case.version != V201, profiles.index(case.profile), case.block, case.id)

    return sorted(CASES, key=key)


# --- the README section --------------------------------------------------------------------


WIDTH = 92


def _fill(text: str) -> str:
    """Wrapped at WIDTH, never inside a "block count" pair (joined by NUL until then)."""
    return textwrap.fill(text, width=WIDTH).replace("\0", " ")


def _bullet(text: str) -> str:
    return textwrap.fill(text, width=WIDTH, initial_indent="- ", subsequent_indent="  ")


def _join(ids: Iterable[str]) -> str:
    return ", ".join(ids) or "none yet"


def readme_section(covered: Mapping[str, object]) -> str:
    """The README's "OCPP certification profiles" subsection, from the heading to the end."""
    counts = block_counts(covered)
    out = [
        HEADING,
        "",
        "evhub is **not certified** by the Open Charge Alliance. The OCA's test case documents",
        "describe, per case, what a CSMS must send and answer; evhub's own tests",
        "(`tests/integrations/ocpp/test_tc_*.py`) play the charging station's side of those",
        "cases over real websockets and check the hub's frames and answers. Each test is named",
        "after the cases it plays (`test_tc_b_01_csms_...` plays TC_B_01_CSMS). Below, per",
        "profile and functional block: the cases covered by such a test, of all the CSMS cases",
        "of the block in the test case document (OCPP 2.0.1 Part 6; for 1.6, the Compliancy",
        "Testing Tool's test case document, Central System). The OCA's test plan makes some",
        "of these conditional on what a CSMS declares, so the counts are strict. Blocks are",
        "grouped by the certification profile they belong to; ISO 15118 contract certificates",
        "and tariffs/cost are out of scope. `scripts/certification` prints this section from",
        "the tests, and",
        "`tests/integrations/ocpp/test_certification_list.py` fails when it is out of date.",
        "",
    ]
    out += [f"#### OCPP {V201}", ""]
    for profile in PROFILES_201:
        out += [f"**{profile}**", "", "| Block | Covered / cases | Covered test cases |"]
        out.append("| --- | --- | --- |")
        out += [_row(key, counts, covered) for key in counts if key[:2] == (V201, profile)]
        out.append("")
    out += [f"#### OCPP {V16}", "", "| Profile | Covered / cases | Covered test cases |"]
    out.append("| --- | --- | --- |")
    out += [_row(key, counts, covered) for key in counts if key[0] == V16]
    out.append("")
    not_yet = [c for c in _ordered() if status(c, covered) == NOT_YET]
    out_of_scope = [c for c in _ordered() if status(c, covered) == OUT_OF_SCOPE]
    out.append("Not yet (a CSMS case of a profile above without its test):")
    out.append("")
    for version in (V201, V16):
        ids = sorted(c.id for c in not_yet if c.version == version)
        out.append(_bullet(f"OCPP {version}: {_join(ids)}"))
    out.append("")
    out.append("Out of scope on purpose:")
    out.append("")
    for reason in (ISO, TARIFF):
        ids = [c.id for c in out_of_scope if c.out_of_scope == reason]
        label = (
            "ISO 15118 contract certificates and EV communication"
            if reason == ISO
            else ("tariffs and cost")
        )
        out.append(_bullet(f"{label}: {_join(ids)}"))
    out.append("")
    out.append(closing_note(covered))
    return "\n".join(out) + "\n"


def _row(
    key: tuple[str, str, str],
    counts: Mapping[tuple[str, str, str], tuple[int, int]],
    covered: Mapping[str, object],
) -> str:
    done, total = counts[key]
    ids = [c.id for c in _ordered() if (c.version, c.profile, c.block) == key and c.id in covered]
    return f"| {key[2]} | {done} / {total} | {_join(ids)} |"


def closing_note(covered: Mapping[str, object]) -> str:
    """The counts per block in one paragraph."""
    counts = block_counts(covered)
    parts = []
    for version in (V201, V16):
        per_block: dict[str, list[int]] = {}
        for (v, _profile, block), (done, total) in counts.items():
            if v != version:
                continue
            name = block.split(" ")[0] if version == V201 else block
            entry = per_block.setdefault(name, [0, 0])
            entry[0] += done
            entry[1] += total
        order = sorted(per_block) if version == V201 else list(per_block)
        listed = "; ".join(
            f"{name.replace(' ', chr(0))}\0{per_block[name][0]}/{per_block[name][1]}"
            for name in order
        )
        done = sum(d for d, _ in per_block.values())
        total = sum(t for _, t in per_block.values())
        parts.append(f"OCPP {version}: {done} of {total} cases covered ({listed})")
    return _fill("In all, " + ". ".join(parts) + ".")


def section_in(readme: str) -> str | None:
    """The certification subsection of a README's text, up to the next `##` or `###`
    heading (another subsection is left alone), or None."""
    start = readme.find(HEADING + "\n")
    if start < 0:
        return None
    end = NEXT_HEADING.search(readme, start + len(HEADING))
    return readme[start : end.start() + 1 if end else len(readme)]


def main(argv: list[str]) -> int:
    covered, unmatched = coverage()
    section = readme_section(covered)
    if "--write" in argv:
        text = README.read_text(encoding="utf-8")
        current = section_in(text)
        if current is None:
            print(f"{README}: no '{HEADING}' section to replace", file=sys.stderr)
            return 1
        README.write_text(text.replace(current, section + "\n", 1), encoding="utf-8")
    else:
        sys.stdout.write(section)
    if unmatched:
        print(
            "tests named after no listed case (rename them after the case ids they play): "
            + ", ".join(unmatched),
            file=sys.stderr,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
