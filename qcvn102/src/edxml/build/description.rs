//! What a caller describes: the JSON of a document or a status report, and the files to attach (see the
//! module documentation of `build` for an example).

use crate::edxml::status::StatusCode;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// An agency in `From`, `To`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Organization {
    /// `OrganId`: the agency's QCVN 102 code (`000.00.00.H41`), or any other code the national network uses
    /// (`G12`, `H37.02.02`, a tax code; `docs/qcvn102.md`, "Agency codes").
    pub organ_id: String,
    /// `OrganizationInCharge`: the governing body.
    #[serde(default)]
    pub organization_in_charge: Option<String>,
    /// `OrganName`.
    #[serde(default)]
    pub organ_name: Option<String>,
    /// `OrganAdd`: postal address.
    #[serde(default)]
    pub address: Option<String>,
    /// `Email`.
    #[serde(default)]
    pub email: Option<String>,
    /// `Telephone`.
    #[serde(default)]
    pub telephone: Option<String>,
    /// `Fax`.
    #[serde(default)]
    pub fax: Option<String>,
    /// `Website`.
    #[serde(default)]
    pub website: Option<String>,
}

impl Organization {
    /// An agency known only by its code.
    pub fn new(organ_id: impl Into<String>) -> Self {
        Self {
            organ_id: organ_id.into(),
            ..Self::default()
        }
    }
}

/// `Code`: the document's number and notation ("số, ký hiệu"), e.g. `125` / `UBND-VP`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DocumentCode {
    /// `CodeNumber`.
    #[serde(deserialize_with = "de::text")]
    pub number: String,
    /// `CodeNotation`.
    #[serde(default)]
    pub notation: String,
}

/// `PromulgationInfo`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Promulgation {
    /// `Place`.
    pub place: String,
    /// `PromulgationDate`: `yyyy/MM/dd` or `yyyy-MM-dd`.
    pub date: String,
}

/// `DocumentType`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DocumentKind {
    /// `Type`: numeric document type code (JSON name `type`).
    #[serde(rename = "type", deserialize_with = "de::text")]
    pub kind: String,
    /// `TypeDetail`: numeric.
    #[serde(default, deserialize_with = "de::opt_text")]
    pub type_detail: Option<String>,
    /// `TypeName`, e.g. "Công văn", "Quyết định".
    pub type_name: String,
}

/// `SignerInfo`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signer {
    /// `Competence`, e.g. "TM. UBND".
    #[serde(default)]
    pub competence: Option<String>,
    /// `Position`.
    #[serde(default)]
    pub position: Option<String>,
    /// `FullName`.
    #[serde(default)]
    pub full_name: Option<String>,
}

/// `ResponseFor`: the document this one (or this status) answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResponseForDescription {
    /// `OrganId` of the answered document's sender, to whom a status goes back.
    pub organ_id: String,
    /// `Code`: its number/notation as one text, e.g. "125/UBND-VP".
    #[serde(default)]
    pub code: Option<String>,
    /// `PromulgationDate`.
    #[serde(default)]
    pub promulgation_date: Option<String>,
    /// `DocumentId`.
    pub document_id: String,
}

/// `TraceHeader`: one hop the package went through.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TraceEntry {
    /// `OrganId`.
    pub organ_id: String,
    /// `Timestamp`.
    pub timestamp: String,
}

/// `StaffInfo`: the clerk responsible.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaffInfo {
    /// `Department`.
    #[serde(default)]
    pub department: Option<String>,
    /// `Staff`: full name.
    #[serde(default)]
    pub staff: Option<String>,
    /// `Email`.
    #[serde(default)]
    pub email: Option<String>,
    /// `Mobile`.
    #[serde(default, deserialize_with = "de::opt_text")]
    pub mobile: Option<String>,
}

/// `ReplacementInfo`: a document this one replaces, and where that one went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Replacement {
    /// `DocumentId` of the replaced document.
    pub document_id: String,
    /// `OrganIdList/OrganId`.
    #[serde(default)]
    pub organ_ids: Vec<String>,
}

/// `TraceHeaderList/Bussiness`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Business {
    /// `BussinessDocType`: 0 new, 1 revoke, 2 update, 3 replace. Default 0.
    #[serde(default = "zero", deserialize_with = "de::text")]
    pub doc_type: String,
    /// `BussinessDocReason`.
    #[serde(default)]
    pub reason: Option<String>,
    /// `Paper`: whether a paper copy follows (0/1). Default 0.
    #[serde(default, deserialize_with = "de::opt_text")]
    pub paper: Option<String>,
    /// `DocumentId` the business information is about; default the package's `DocumentId`.
    #[serde(default)]
    pub document_id: Option<String>,
    /// `StaffInfo`.
    #[serde(default)]
    pub staff: Option<StaffInfo>,
    /// `ReplacementInfoList/ReplacementInfo` (for doc_type 3).
    #[serde(default)]
    pub replacements: Vec<Replacement>,
}

impl Default for Business {
    fn default() -> Self {
        Self {
            doc_type: zero(),
            reason: None,
            paper: None,
            document_id: None,
            staff: None,
            replacements: Vec::new(),
        }
    }
}

fn zero() -> String {
    "0".into()
}

/// A document to send, as a commune or department system describes it (see the module documentation).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DocumentDescription {
    /// `From`.
    pub from: Organization,
    /// `To`, at least one.
    pub to: Vec<Organization>,
    /// `DocumentId`; when absent it is made as `<from.organ_id>,<promulgation.date>,<number>/<notation>`.
    #[serde(default)]
    pub document_id: Option<String>,
    /// `Code`.
    pub code: DocumentCode,
    /// `PromulgationInfo`.
    pub promulgation: Promulgation,
    /// `DocumentType`.
    pub document_type: DocumentKind,
    /// `Subject` (trích yếu).
    pub subject: String,
    /// `Content`.
    #[serde(default)]
    pub content: Option<String>,
    /// `SignerInfo`.
    #[serde(default)]
    pub signer: Option<Signer>,
    /// `DueDate`.
    #[serde(default)]
    pub due_date: Option<String>,
    /// `OtherInfo/Priority`.
    #[serde(default, deserialize_with = "de::opt_text")]
    pub priority: Option<String>,
    /// `OtherInfo/SphereOfPromulgation`.
    #[serde(default)]
    pub sphere_of_promulgation: Option<String>,
    /// `OtherInfo/TyperNotation`.
    #[serde(default)]
    pub typer_notation: Option<String>,
    /// `OtherInfo/PromulgationAmount`.
    #[serde(default, deserialize_with = "de::opt_text")]
    pub promulgation_amount: Option<String>,
    /// `OtherInfo/PageAmount`.
    #[serde(default, deserialize_with = "de::opt_text")]
    pub page_amount: Option<String>,
    /// `OtherInfo/Direction` (true/false).
    #[serde(default, deserialize_with = "de::opt_text")]
    pub direction: Option<String>,
    /// `OtherInfo/Appendixes/Appendix`.
    #[serde(default)]
    pub appendixes: Vec<String>,
    /// `SteeringType`.
    #[serde(default, deserialize_with = "de::opt_text")]
    pub steering_type: Option<String>,
    /// `ToPlaces/Place`: recipients named in the text ("Nơi nhận").
    #[serde(default)]
    pub to_places: Vec<String>,
    /// `ResponseFor`: documents this one answers.
    #[serde(default)]
    pub response_for: Vec<ResponseForDescription>,
    /// `TraceHeaderList/TraceHeader`; when empty one entry (`from`, now in Vietnamese time) is written
    /// (`file-in`: the description file's modification time instead of now).
    #[serde(default)]
    pub trace: Vec<TraceEntry>,
    /// `TraceHeaderList/Bussiness`; always written, with defaults when absent.
    #[serde(default)]
    pub business: Option<Business>,
}

/// A status report about a document, sent back to its sender (or a recall, 13, sent by the sender).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusDescription {
    /// `ResponseFor`: the document reported on; its `organ_id` is where the status goes.
    pub response_for: ResponseForDescription,
    /// `From`: who reports.
    pub from: Organization,
    /// `StatusCode`, `"01"` … `"16"` (a number is accepted too).
    pub status_code: StatusCode,
    /// `Description`; required for 02 (the reason for rejecting).
    #[serde(default)]
    pub description: Option<String>,
    /// `Timestamp`; now (Vietnamese time) when absent (`file-in` fills it with the description file's
    /// modification time, so a file read again after a crash builds the same package).
    #[serde(default)]
    pub timestamp: Option<String>,
    /// `StaffInfo`.
    #[serde(default)]
    pub staff: Option<StaffInfo>,
    /// `TraceHeaderList/TraceHeader`; when empty one entry (`from`, the timestamp) is written.
    #[serde(default)]
    pub trace: Vec<TraceEntry>,
}

/// A file to attach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileAttachment {
    /// `AttachmentName` (and `Description`), e.g. `cong-van-125.pdf`.
    pub name: String,
    /// `ContentType`; `application/octet-stream` when empty.
    pub content_type: String,
    pub bytes: Bytes,
}

impl FileAttachment {
    pub fn new(
        name: impl Into<String>,
        content_type: impl Into<String>,
        bytes: impl Into<Bytes>,
    ) -> Self {
        Self {
            name: name.into(),
            content_type: content_type.into(),
            bytes: bytes.into(),
        }
    }
}

/// Fields the package carries as text but JSON writers may send as numbers or booleans.
mod de {
    use serde::{Deserialize, Deserializer};

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Scalar {
        Text(String),
        Unsigned(u64),
        Signed(i64),
        Float(f64),
        Bool(bool),
    }

    impl Scalar {
        fn into_text(self) -> String {
            match self {
                Scalar::Text(s) => s,
                Scalar::Unsigned(n) => n.to_string(),
                Scalar::Signed(n) => n.to_string(),
                Scalar::Float(n) => n.to_string(),
                Scalar::Bool(b) => b.to_string(),
            }
        }
    }

    pub fn text<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        Scalar::deserialize(d).map(Scalar::into_text)
    }

    pub fn opt_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        Option::<Scalar>::deserialize(d).map(|s| s.map(Scalar::into_text))
    }
}
