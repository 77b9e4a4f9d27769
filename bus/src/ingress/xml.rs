//! edXML packages on ingress (`Content-Type: application/xml`). (being wired to the edxml module)

use super::{Ingress, Prepared};
use crate::adapter::Submission;
use crate::error::{ApiError, code};

pub(crate) async fn prepare(_ingress: &Ingress, _sub: &Submission) -> Result<Prepared, ApiError> {
    Err(ApiError::new(
        code::UNSUPPORTED_MEDIA_TYPE,
        "edXML ingress is not enabled in this build",
    ))
}
