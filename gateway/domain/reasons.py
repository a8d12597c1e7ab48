"""The error catalogue: every ``ErrorInfo`` reason sigw sends (domain ``sigw``), with its gRPC code, what it means,
what the caller should do, and the Chinese message (zh-CN ``LocalizedMessage``; the national interface's
``err_msg``). The contract's ``ErrorReason`` enum (proto/sigw/v1/errors.proto) and the README's table are written
from it (``scripts/error_catalogue.py``), and a test fails when the code raises a reason missing here."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CATALOGUE", "Reason"]


@dataclass(frozen=True)
class Reason:
    name: str
    codes: tuple[str, ...]
    """gRPC status code names it comes with, e.g. ("FAILED_PRECONDITION",)."""
    meaning: str
    """What happened, one English sentence."""
    action: str
    """What the caller should do, one short English sentence (imperative)."""
    zh: str
    """The same for a person reading Chinese: a short message in zh-CN (no trailing reason code)."""


CATALOGUE: dict[str, Reason] = {r.name: r for r in (
    # ------------------------------------------------------------------------------------------------ transfers
    Reason(
        "BAD_CONTRIBUTION_RECORD",
        ("INVALID_ARGUMENT",),
        "The contribution records of SendTransferInfo (info.contributions) are malformed: a field that is not an "
        "integer, a year outside 1950-2100, a month outside 1-12, last_month before first_month, a base or amount "
        "out of range, or two records of one year with overlapping months.",
        "Correct the records the field violations name and send the information table again.",
        "转移信息表中的缴费记录有误",
    ),
    Reason(
        "BENEFITS_STARTED",
        ("FAILED_PRECONDITION",),
        "The person already draws the resident pension, and a resident pension being paid is never transferred "
        "(社会保险经办条例 Art. 12 ¶3).",
        "Do not apply: the pension stays and is paid where it is.",
        "已领取城乡居民基本养老保险待遇的，不转移养老保险关系",
    ),
    Reason(
        "CONCURRENT_CHANGE",
        ("ABORTED",),
        "The transfer or settlement changed between sigw reading and writing it, and sigw's own retries lost the "
        "race as well; nothing was changed by this request.",
        "Retry the same request with the same request_id (or msgid), which is applied at most once.",
        "数据正被其他请求修改，请重试",
    ),
    Reason(
        "FUNDS_MISMATCH",
        ("FAILED_PRECONDITION",),
        "The funds of SendTransferInfo disagree with its information table under the kind's rule (info.funds_fen "
        "is not the sum of the parts, the pooled fund is not the share of the wage bases 国办发〔2009〕66号 Art. 4 "
        "sets, the unemployment months exceed what 失业保险条例 Art. 17 allows, or an amount this kind never moves "
        "is not zero); the refusal is recorded on the transfer's timeline.",
        "Correct the amounts the field violations name and send the information table again.",
        "转移资金与参保缴费信息表不符",
    ),
    Reason(
        "HUKOU_NOT_MOVED",
        ("FAILED_PRECONDITION",),
        "A resident pension moves only when the person's hukou moves (社会保险经办条例 Art. 12 ¶3), and "
        "circumstances.hukou_moved is not set.",
        "Apply only after the hukou has moved to the target region.",
        "城乡居民基本养老保险关系随户籍迁移转移，户籍未迁移的不予转移",
    ),
    Reason(
        "NOT_OVERDUE",
        ("FAILED_PRECONDITION",),
        "The overdue sweeper found no reminder owed (the open step is not overdue, is closed, or was reminded "
        "already); sigw handles this internally and does not send it to callers.",
        "Nothing to do: the sweeper skips the transfer.",
        "该办理环节未超期，无需催办",
    ),
    Reason(
        "NOT_TEMPORARY_ACCOUNT_CASE",
        ("FAILED_PRECONDITION",),
        "OpenTemporaryAccount was called for a transfer that moves the pension relationship, which 国办发〔2009〕66号 "
        "Art. 5 does not make a temporary-account case.",
        "Send the contact letter (SendContactLetter) instead.",
        "该转移不属于建立临时基本养老保险缴费账户的情形，请发出联系函",
    ),
    Reason(
        "NOT_TRANSFERABLE",
        ("FAILED_PRECONDITION",),
        "Work-injury and maternity insurance are not transferred between regions (社会保险经办条例 Art. 15); the "
        "metadata enrol_region names where the person enrols.",
        "Enrol the person in that insurance at the new region instead of applying for a transfer.",
        "工伤保险、生育保险关系不转移，请在新参保地参保",
    ),
    Reason(
        "NO_AGENCIES",
        ("FAILED_PRECONDITION",),
        "DeterminePayingRegion needs the regions' HRSS agencies, and this gateway is configured without any.",
        "Ask the sigw operator to configure the agencies' endpoints.",
        "本平台未接入经办机构，无法办理",
    ),
    Reason(
        "NO_GROUND_FOR_TRANSFER",
        ("FAILED_PRECONDITION",),
        "Resident medical insurance moves only with a hukou move or a change of habitual residence "
        "(社会保险经办条例 Art. 13 ¶2), and the circumstances state neither.",
        "Apply only when the hukou has moved or the habitual residence has changed, and say which in circumstances.",
        "未迁移户籍或变更经常居住地的，城乡居民基本医疗保险关系不予转移",
    ),
    Reason(
        "NO_OPEN_STEP",
        ("FAILED_PRECONDITION",),
        "The quiet sweep found the transfer waiting on nobody, so no notice is sent again; sigw handles this "
        "internally and does not send it to callers.",
        "Nothing to do: the sweeper skips the transfer.",
        "该转移申请没有待办环节",
    ),
    Reason(
        "RELATIONSHIP_AMBIGUOUS",
        ("FAILED_PRECONDITION",),
        "More than one region's HRSS agency reports holding the person's pension relationship, so the paying "
        "region cannot be determined (国办发〔2009〕66号 Art. 6).",
        "Have the regions the message names correct their records, then ask again.",
        "多个地区均报告保留基本养老保险关系，无法确定待遇领取地",
    ),
    Reason(
        "RELATIONSHIP_NOT_FOUND",
        ("FAILED_PRECONDITION",),
        "No region asked reports holding the person's pension relationship, so the paying region cannot be "
        "determined (国办发〔2009〕66号 Art. 6).",
        "Ask again naming, in region_codes, the region that holds the relationship (or leave it empty to ask all).",
        "未查询到保留基本养老保险关系的地区，无法确定待遇领取地",
    ),
    Reason(
        "RETIREE_EXCLUDED",
        ("FAILED_PRECONDITION",),
        "A retiree's employee medical insurance is not transferred (社会保险经办条例 Art. 13 ¶1).",
        "Do not apply: the retiree's medical insurance stays where it is.",
        "退休人员的职工基本医疗保险关系不转移",
    ),
    Reason(
        "SAME_REGION",
        ("FAILED_PRECONDITION",),
        "The source and target region are the same, and only an institution <-> enterprise pension transfer "
        "happens inside one region (社会保险经办条例 Art. 12 ¶2).",
        "Check source_region and target_region; inside one region use the institution <-> enterprise pension kind.",
        "转出地与转入地相同，无需办理转移",
    ),
    Reason(
        "TEMPORARY_ACCOUNT_CASE",
        ("FAILED_PRECONDITION",),
        "SendContactLetter was called for a transfer where 国办发〔2009〕66号 Art. 5 keeps the relationship at the "
        "source region and a temporary contribution account opens at the target region instead.",
        "Open the temporary account (OpenTemporaryAccount) instead of sending a contact letter.",
        "该转移应在转入地建立临时基本养老保险缴费账户，不发联系函",
    ),
    Reason(
        "TRANSFER_NOT_FOUND",
        ("NOT_FOUND",),
        "No transfer has this transfer_id, or the caller may not read it, or (QueryTransferStatus) the ID number "
        "is not the person's; all get the same answer so transfer ids cannot be probed.",
        "Check transfer_id (and the applicant's ID number) and that the caller is a party to the transfer.",
        "转移申请不存在",
    ),
    Reason(
        "UNKNOWN_PORTAL",
        ("INVALID_ARGUMENT",),
        "CreateTransfer names in contact.portal a portal that does not take notices in sigw's registry (a retry of "
        "a request that created its transfer before the portal left gets its first answer instead).",
        "Name a registered portal in contact.portal, or leave it empty.",
        "通知门户未登记",
    ),
    Reason(
        "WRONG_STATE",
        ("FAILED_PRECONDITION",),
        "The transfer's current state (metadata state) does not allow this step, e.g. transfer information "
        "before the contact letter, or a step on a closed transfer.",
        "Read the transfer (GetTransfer) and take the step its state calls for.",
        "转移申请当前状态不能办理此事项",
    ),
    # ------------------------------------------------------------------------------- settlement and hospitals
    Reason(
        "AGENCY_REFUSED",
        ("FAILED_PRECONDITION",),
        "An agency sigw asked (the insured region's for a settlement, refund or person information, or an HRSS "
        "agency for contribution periods) refused with FAILED_PRECONDITION or INVALID_ARGUMENT and named no "
        "reason; when it names one, sigw passes the agency's own reason on instead, still as FAILED_PRECONDITION, "
        "with the agency's detail in the message.",
        "Read the agency's detail in the message and settle the matter with that agency; do not retry unchanged.",
        "经办机构拒绝办理",
    ),
    Reason(
        "ALREADY_CANCELLED",
        ("FAILED_PRECONDITION",),
        "The settlement was already cancelled or reversed, by the message the error message names.",
        "Do not cancel or reverse it again; read the settlement (GetSettlement) for its state.",
        "结算已撤销，不能重复撤销或冲正",
    ),
    Reason(
        "DETAIL_SERIAL_USED",
        ("FAILED_PRECONDITION",),
        "A fee detail serial (feedetl_sn, in metadata) was uploaded to this stay before with other content.",
        "Give a new detail a new feedetl_sn, or cancel the earlier detail before uploading it changed.",
        "费用明细流水号已用于其他明细",
    ),
    Reason(
        "DETAIL_SETTLED",
        ("FAILED_PRECONDITION",),
        "Fee details to cancel or settle are held by a settlement that stands or may still be running.",
        "Cancel that settlement first, or leave those details out.",
        "费用明细已结算，请先撤销结算",
    ),
    Reason(
        "DUPLICATE_SETTLEMENT_ID",
        ("INVALID_ARGUMENT",),
        "Reconcile's lines list one settlement_id more than once (the field violation names the line).",
        "List each settlement once in lines and reconcile again.",
        "对账明细中结算ID重复",
    ),
    Reason(
        "FILING_NOT_ACTIVE",
        ("FAILED_PRECONDITION",),
        "CancelFiling was asked for a filing that is already cancelled.",
        "Do not cancel it again; list the person's filings (ListFilings) for the active ones.",
        "备案已撤销",
    ),
    Reason(
        "FILING_NOT_FOUND",
        ("NOT_FOUND",),
        "No filing has this filing_id, or the caller is not the insured region's healthcare-security agency "
        "that may see it (both get the same answer).",
        "Check filing_id and that the caller is the agency of the filing's insured region.",
        "备案信息不存在",
    ),
    Reason(
        "INSURED_REGION_MISMATCH",
        ("INVALID_ARGUMENT",),
        "The insured region given (insuplc_admdvs) is not the one the person's information names.",
        "Send the insured region from the person's information (1101), or leave insuplc_admdvs empty.",
        "参保地医保区划与人员信息不符",
    ),
    Reason(
        "INSURED_REGION_REQUIRED",
        ("INVALID_ARGUMENT",),
        "The person information query (1101) names no insured region, and the person has no single active filing "
        "for this place of treatment that would name it.",
        "Send the insured region in insuplc_admdvs.",
        "请传入参保地医保区划（insuplc_admdvs）：该人员在本地无唯一有效的异地就医备案",
    ),
    Reason(
        "INVALID_DETAILS",
        ("INVALID_ARGUMENT",),
        "Uploaded fee details (2204 / 2301) are wrong: an item not in the place of treatment's catalogue "
        "(med_list_codg), an amount that is not quantity × price, or a feedetl_sn repeated in the upload.",
        "Correct the details the field violations name and upload them again.",
        "费用明细有误",
    ),
    Reason(
        "MONTH_CLOSED",
        ("FAILED_PRECONDITION",),
        "The settlement month (metadata month) is closed for clearing, so settling in it, cancelling or reversing "
        "its settlements is refused.",
        "Do not retry: take the case to the clearing operator, who settles it outside the closed month.",
        "该结算月份已清算关账",
    ),
    Reason(
        "MSGID_REUSED",
        ("ALREADY_EXISTS",),
        "This msgid was used before by the same hospital with a different message.",
        "Give every new message a new msgid; repeat a msgid only to retry exactly the same message.",
        "报文ID已被其他内容的报文使用",
    ),
    Reason(
        "NOT_FILED",
        ("FAILED_PRECONDITION",),
        "The insured region (metadata insured_region) does not settle non-local care without a filing (备案), and "
        "the person has none for this place of treatment.",
        "Have the person file with the insured region's agency (异地就医备案), then settle.",
        "未办理异地就医备案，参保地不予直接结算",
    ),
    Reason(
        "NOT_INSURED",
        ("FAILED_PRECONDITION",),
        "The person holds no active insurance of the type asked for (insutype) in the insured region.",
        "Check insutype against the person's information (1101); settle any other way locally.",
        "该人员无此险种的有效参保",
    ),
    Reason(
        "NOT_NON_LOCAL",
        ("FAILED_PRECONDITION",),
        "The insured region is the place of treatment, so this is not non-local care and sigw does not settle it.",
        "Settle it locally with the region's own system.",
        "参保人参保地即就医地，请按本地结算",
    ),
    Reason(
        "NO_CATALOGUE",
        ("FAILED_PRECONDITION",),
        "No catalogue is loaded for the hospital's place of treatment, so fee details cannot be classed.",
        "Ask the sigw operator to load the place of treatment's catalogue, then upload again.",
        "就医地目录未加载",
    ),
    Reason(
        "NO_DETAILS",
        ("FAILED_PRECONDITION",),
        "The stay has no uploaded, unsettled fee details (of the batch, for outpatient care) to settle.",
        "Upload the fee details (2204 / 2301) before settling.",
        "没有待结算的费用明细",
    ),
    Reason(
        "ORIGINAL_MESSAGE_NOT_FOUND",
        ("NOT_FOUND",),
        "No settlement or stay of this hospital was made under the original msgid (omsgid, original_msgid) to "
        "reverse; another hospital's msgid gets the same answer.",
        "Check the original msgid and transaction number; a message that never arrived needs no reversal.",
        "原交易不存在",
    ),
    Reason(
        "PERSON_MISMATCH",
        ("INVALID_ARGUMENT",),
        "The person number (psn_no) is not the person of the stay (mdtrt_id) the message names.",
        "Send the psn_no the stay was opened with, or leave it empty.",
        "人员编号与就诊信息不符",
    ),
    Reason(
        "PERSON_NOT_FOUND",
        ("NOT_FOUND",),
        "The insured region has nobody insured under this credential (1101), or the person number (psn_no) is "
        "not known to sigw because no person information query returned it.",
        "Check the credential and insured region, and query the person's information (1101) before using psn_no.",
        "未查询到人员信息",
    ),
    Reason(
        "SETTLEMENT_NOT_FOUND",
        ("NOT_FOUND",),
        "No settlement has this settlement_id (setl_id), or the caller may not read it: only the settling "
        "hospital, the insured region's healthcare-security agency and operators may.",
        "Check setl_id / settlement_id and that the caller is the hospital that settled it.",
        "结算信息不存在",
    ),
    Reason(
        "TOO_MANY_DETAILS",
        ("FAILED_PRECONDITION",),
        "The upload would give the stay more than 2000 fee details.",
        "Settle and close this stay, or cancel unneeded details, before uploading more.",
        "费用明细条数超过上限",
    ),
    Reason(
        "TOTAL_MISMATCH",
        ("INVALID_ARGUMENT",),
        "The total (medfee_sumamt) is not the sum of the stay's uploaded, unsettled fee details (of the batch, "
        "for outpatient care).",
        "Send the total of the unsettled details, or upload the missing ones first.",
        "医疗费总额与明细不符",
    ),
    Reason(
        "UNKNOWN_HOSPITAL_LEVEL",
        ("FAILED_PRECONDITION", "INVALID_ARGUMENT"),
        "The insured region's policy sets no reimbursement ratio for the hospital's level under this scheme; the "
        "insured region's agency refuses with INVALID_ARGUMENT, which sigw passes on as FAILED_PRECONDITION.",
        "Ask the sigw operator to check the hospital's level in the registry.",
        "参保地未设定该医院等级的报销比例",
    ),
    Reason(
        "VISIT_BUSY",
        ("ABORTED",),
        "The stay (mdtrt_id) kept being changed by other messages while this one tried to change it; nothing "
        "was changed.",
        "Retry the same message with the same msgid.",
        "就诊信息正被其他交易修改，请重试",
    ),
    Reason(
        "VISIT_CANCELLED",
        ("FAILED_PRECONDITION",),
        "The stay (mdtrt_id, in metadata) was cancelled, so no details can be uploaded to it or settled.",
        "Open a new stay (2201 / 2401) for further care.",
        "就诊已撤销",
    ),
    Reason(
        "VISIT_MISMATCH",
        ("INVALID_ARGUMENT",),
        "The stay named (mdtrt_id) is not the stay of the settlement to cancel (setl_id).",
        "Send the mdtrt_id and setl_id of the same settlement.",
        "就诊ID与结算不符",
    ),
    Reason(
        "VISIT_NOT_FOUND",
        ("NOT_FOUND",),
        "This hospital has no stay with this mdtrt_id (another hospital's stay gets the same answer).",
        "Check mdtrt_id against the answer of the stay's opening (2201 / 2401).",
        "就诊信息不存在",
    ),
    Reason(
        "VISIT_OF_ANOTHER_HOSPITAL",
        ("PERMISSION_DENIED",),
        "The stay this msgid opens already belongs to another hospital, because a stay's mdtrt_id derives from "
        "the msgid that opened it.",
        "Use msgids that start with your own institution code (fixmedins_code + time + sequence).",
        "该就诊属于其他机构",
    ),
    Reason(
        "VISIT_SETTLED",
        ("FAILED_PRECONDITION",),
        "The stay cannot be cancelled while a settlement of it (metadata setl_id) stands or may still be running.",
        "Cancel the settlement (2208 / 2305) first, then cancel the stay.",
        "就诊存在未撤销的结算，请先撤销结算",
    ),
    # ------------------------------------------------------------------------------------- national interface
    Reason(
        "AMOUNT_MISMATCH",
        ("INVALID_ARGUMENT",),
        "A clearing confirmation (3261) confirms amounts (medfee_sumamt, optins_pay_sumamt) that differ from "
        "sigw's clearing details for that settlement.",
        "Check the amounts against the clearing details (3260), or submit the row unconfirmed (cnfm_flag 0).",
        "确认的金额与平台清分明细不符",
    ),
    Reason(
        "BODY_TOO_LARGE",
        ("INVALID_ARGUMENT",),
        "The national interface's request body is over 4 MB and was not read (answered with infcode -1).",
        "Send a smaller message: split large uploads or files.",
        "报文过大",
    ),
    Reason(
        "FILE_NOT_FOUND",
        ("NOT_FOUND",),
        "No file of this hospital has this file number, or it has expired.",
        "Upload the file again (9101) and use the new file number.",
        "文件不存在或已过期，请重新上传（9101）",
    ),
    Reason(
        "INVALID_FILE",
        ("INVALID_ARGUMENT",),
        "An uploaded file (fsUploadIn.in) or a reconciliation file is not valid: not base64 or a byte array, "
        "holding an ID number, a damaged or oversized zip, not UTF-8 or GB18030 text, or bad or repeated rows.",
        "Correct the file as the field violations say and upload it again (9101).",
        "文件有误",
    ),
    Reason(
        "INVALID_INPUT",
        ("INVALID_ARGUMENT",),
        "The message's input is wrong: a field missing, malformed or out of range, as the field violations in "
        "err_msg name.",
        "Correct the fields err_msg names and send the message again with a new msgid.",
        "入参有误",
    ),
    Reason(
        "NOT_JSON",
        ("INVALID_ARGUMENT",),
        "The national interface's request body is not JSON, or not a JSON object.",
        "Send the message as one UTF-8 JSON object.",
        "报文不是合法的JSON",
    ),
    Reason(
        "NOT_REVERSIBLE",
        ("FAILED_PRECONDITION",),
        "A reversal (2601) names an original transaction (oinfno) that sigw cannot reverse: only settlements "
        "(2207, 2304) and stay openings (2201, 2401) are.",
        "Undo the transaction with its own cancellation transaction instead.",
        "该交易不支持冲正",
    ),
    Reason(
        "NOT_SIGNED_IN",
        ("UNAUTHENTICATED",),
        "The message's sign_no is not a live sign-in of this hospital (every transaction but 9001 needs one).",
        "Sign in (9001) and send the sign_no it answers.",
        "未签到或签到已失效，请先签到（9001）",
    ),
    Reason(
        "NOT_THIS_MONTH",
        ("INVALID_ARGUMENT",),
        "A clearing confirmation (3261) names a settlement (setl_sn) that is not a standing settlement of this "
        "hospital in the clearing month asked for.",
        "Confirm only the settlements the clearing details (3260) of that month list.",
        "确认明细不属于本机构该清分月份",
    ),
    Reason(
        "UNKNOWN_TRANSACTION",
        ("NOT_FOUND",),
        "sigw does not serve the transaction number (infno) of the message.",
        "Send one of the transactions sigw serves, as its interface description lists them.",
        "不支持的交易编号",
    ),
    # ------------------------------------------------------------------------------------ identity and access
    Reason(
        "CERTIFICATE_REVOKED",
        ("UNAUTHENTICATED",),
        "The client certificate is on the CA's revocation list.",
        "Connect with a new certificate issued by the sigw CA.",
        "证书已被吊销",
    ),
    Reason(
        "HOSPITAL_NOT_REGISTERED",
        ("PERMISSION_DENIED", "UNAUTHENTICATED"),
        "The hospital the caller is (fixmedins_code) is not registered with sigw under the region it belongs to.",
        "Ask the sigw operator to register the hospital under its region.",
        "定点医药机构未在本平台登记",
    ),
    Reason(
        "NOT_A_PORTAL",
        ("PERMISSION_DENIED",),
        "Applicants' status queries (QueryTransferStatus, 社会保险经办条例 Art. 16) come only through a portal "
        "participant or an operator.",
        "Relay the applicant's query through a registered portal.",
        "参保人查询须经服务门户办理",
    ),
    Reason(
        "NOT_HRSS_AGENCY",
        ("PERMISSION_DENIED",),
        "Only HRSS (social insurance) agencies and operators may determine the paying region "
        "(国办发〔2009〕66号 Art. 6).",
        "Have a region's HRSS agency ask.",
        "确定待遇领取地须由社会保险经办机构办理",
    ),
    Reason(
        "NOT_INSURED_REGION_AGENCY",
        ("PERMISSION_DENIED",),
        "Only the insured region's healthcare-security agency makes, cancels and lists that region's filings.",
        "Have the insured region's healthcare-security agency do it.",
        "仅参保地医疗保障经办机构可办理其异地就医备案",
    ),
    Reason(
        "NOT_ISSUED_BY_CA",
        ("UNAUTHENTICATED",),
        "The client certificate was not issued by sigw's CA itself.",
        "Connect with the certificate sigw's CA issued to you.",
        "证书不是本平台CA签发",
    ),
    Reason(
        "NOT_MILITARY_AGENCY",
        ("PERMISSION_DENIED",),
        "Military transfers are started only by a military agency (社会保险经办条例 Art. 17).",
        "Have the military agency create the transfer.",
        "军人退役保险关系转移须由军队后勤财务部门发起",
    ),
    Reason(
        "NOT_OPERATOR",
        ("PERMISSION_DENIED",),
        "This needs the operator role (closing or recounting a month, the delivery queues); clearing statements "
        "also admit healthcare-security agencies.",
        "Have an operator do it.",
        "此事项须由平台运维人员办理",
    ),
    Reason(
        "NOT_PAYING_REGION_AGENCY",
        ("PERMISSION_DENIED",),
        "Only the paying region's HRSS agency starts the pension collections to it (start_collection).",
        "Ask without start_collection, or have the paying region's HRSS agency start the collections.",
        "仅待遇领取地社会保险经办机构可发起归集",
    ),
    Reason(
        "NOT_PLACE_OF_TREATMENT",
        ("PERMISSION_DENIED",),
        "The place of treatment the message names (mdtrtarea_admvs, treatment_region) is not the region the "
        "hospital belongs to.",
        "Send the hospital's own region as the place of treatment.",
        "就医地医保区划不是本机构所在地",
    ),
    Reason(
        "NOT_REGION_AGENCY",
        ("PERMISSION_DENIED",),
        "Only a region's own agencies (each its own line) and operators may list the region's transfers.",
        "List your own region's transfers only.",
        "仅本地区经办机构可查询本地区转移申请",
    ),
    Reason(
        "NOT_STEP_HOLDER",
        ("PERMISSION_DENIED",),
        "The caller may read the transfer but not take this step: the contact letter, temporary account, "
        "completion and cancellation are the target agency's, the transfer information the source agency's.",
        "Leave the step to the agency that holds it.",
        "调用方无权办理此事项",
    ),
    Reason(
        "NOT_TARGET_AGENCY",
        ("PERMISSION_DENIED",),
        "An application is accepted only by the target region's agency of the kind's line (转入地受理).",
        "Have the target region's agency of that line create the transfer.",
        "转移申请须由转入地经办机构受理",
    ),
    Reason(
        "NOT_THIS_HOSPITAL",
        ("PERMISSION_DENIED",),
        "The hospital the message names (fixmedins_code, hospital_code) is not the one the caller's certificate "
        "belongs to.",
        "Send your own institution code, over your own certificate.",
        "报文的定点医药机构不是证书所属机构",
    ),
    Reason(
        "NO_IDENTITY",
        ("UNAUTHENTICATED",),
        "The call names no caller: no client certificate naming a participant (mutual TLS), or in development no "
        "x-sigw-participant metadata.",
        "Connect with the client certificate sigw issued to you.",
        "未识别调用方身份（双向TLS证书）",
    ),
    Reason(
        "UNKNOWN_PARTICIPANT",
        ("UNAUTHENTICATED",),
        "The caller's certificate (or development metadata) names no valid participant, or one of a region sigw "
        "does not know.",
        "Connect with a certificate sigw issued for a registered participant.",
        "证书所属机构未登记",
    ),
    # ---------------------------------------------------------------------------------- limits and availability
    Reason(
        "AGENCY_ANSWER_INCONSISTENT",
        ("UNAVAILABLE",),
        "The insured region's answer does not add up to the bill, so nothing was settled.",
        "Retry after the RetryInfo delay with the same msgid.",
        "参保地返回结果不一致，未结算，请稍后重试",
    ),
    Reason(
        "AGENCY_UNAVAILABLE",
        ("UNAVAILABLE",),
        "An agency sigw asked (metadata names its region) did not answer, so nothing was done.",
        "Retry after the RetryInfo delay with the same request_id or msgid.",
        "参保地经办系统暂不可用，请稍后重试",
    ),
    Reason(
        "DEADLINE_TOO_SHORT",
        ("UNAVAILABLE",),
        "The call's deadline left too little time to ask the insured region's agency, so nothing was asked.",
        "Retry at once with a longer deadline.",
        "剩余时间不足，请重试",
    ),
    Reason(
        "INTERNAL",
        ("INTERNAL",),
        "An unexpected failure inside sigw; the operator finds it in the log.",
        "Retry later with the same request_id or msgid, and report the time to the sigw operator if it persists.",
        "平台内部错误，请联系运维",
    ),
    Reason(
        "RATE_LIMITED",
        ("RESOURCE_EXHAUSTED",),
        "The caller sent more calls than its rate limit allows.",
        "Retry after the RetryInfo delay, and send calls more slowly.",
        "交易过于频繁，请稍后重试",
    ),
    Reason(
        "STORE_UNAVAILABLE",
        ("UNAVAILABLE",),
        "sigw's store (Redis) is unreachable or timed out; the request may or may not have been applied.",
        "Retry after the RetryInfo delay with the same request_id or msgid.",
        "平台存储暂不可用，请稍后重试",
    ),
    Reason(
        "TOO_MANY_FAILED_QUERIES",
        ("RESOURCE_EXHAUSTED",),
        "Too many failed status queries for this transfer, or from this portal, within the window, so queries "
        "are refused for a while (so transfer ids and ID numbers cannot be guessed).",
        "Retry after the RetryInfo delay, with the applicant's correct transfer id and ID number.",
        "查询失败次数过多，请稍后再试",
    ),
    Reason(
        "TOO_MANY_STREAMS",
        ("RESOURCE_EXHAUSTED",),
        "The participant already holds the most open WatchTransfer streams it may.",
        "Close a watch you no longer need, then retry after the RetryInfo delay.",
        "同时订阅过多，请先关闭一个再试",
    ),
    # ------------------------------------------------------------------------------------------ general input
    Reason(
        "BAD_CALENDAR_FILE",
        ("INVALID_ARGUMENT",),
        "The operator's working-day calendar file is not valid TOML or has bad [years.N] tables; sigw refuses to "
        "start with it and never sends this to callers.",
        "Correct the entries the field violations name and start sigw again.",
        "工作日历文件有误",
    ),
    Reason(
        "BAD_REGISTRY",
        ("INVALID_ARGUMENT",),
        "The region registry file (regions, hospitals, portals) has bad entries; sigw refuses to start with it "
        "and never sends this to callers.",
        "Correct the entries the field violations name and start sigw again.",
        "地区登记文件有误",
    ),
    Reason(
        "INVALID_ARGUMENT",
        ("INVALID_ARGUMENT",),
        "The request has fields that are missing, malformed or out of range, each named in the BadRequest "
        "details.",
        "Correct the fields the BadRequest details name and send the request again.",
        "请求参数有误",
    ),
    Reason(
        "INVALID_CATALOGUE",
        ("INVALID_ARGUMENT",),
        "A place of treatment's catalogue file (<region>.csv) has a wrong header or bad rows; sigw refuses to "
        "start with it and never sends this to callers.",
        "Correct the rows the field violations name and start sigw again.",
        "目录文件有误",
    ),
    Reason(
        "INVALID_PAGE_TOKEN",
        ("INVALID_ARGUMENT",),
        "The page_token is not one sigw gave for the previous page of this same request.",
        "Send the next_page_token of the previous page unchanged with the same filters, or none for the first page.",
        "分页标记无效",
    ),
    Reason(
        "REQUEST_ID_REUSED",
        ("ALREADY_EXISTS",),
        "This request_id was used before by the same caller with a different request.",
        "Give every new request a new request_id; repeat one only to retry exactly the same request.",
        "报文ID已被其他内容的报文使用",
    ),
    Reason(
        "UNDECODABLE_REQUEST",
        ("INVALID_ARGUMENT",),
        "The request body is not a valid protobuf message for the method called.",
        "Send the request message the method's contract defines.",
        "请求报文无法解析",
    ),
    Reason(
        "UNKNOWN_REGION",
        ("INVALID_ARGUMENT",),
        "A region code the request names (insured region, source or target region, region_codes, a filing's "
        "places) is not a region in sigw's registry, or has no agency sigw can ask.",
        "Use a region code from sigw's registry in the field the violation names.",
        "参保地医保区划未知",
    ),
)}  # fmt: skip
