//! Header parts that document and status packages share: an organization, `ResponseFor`, `StaffInfo`, and
//! the trace list with its business information.

use super::dates::{norm_date, norm_timestamp, now_in_vietnam};
use super::description::{Business, Organization, ResponseForDescription, StaffInfo, TraceEntry};
use super::ids::{check_document_id, check_organ_id};
use super::invalid;
use super::xml::Xml;
use crate::edxml::EdxmlError;

impl Xml {
    pub(super) fn organization(
        &mut self,
        name: &str,
        field: &str,
        o: &Organization,
    ) -> Result<(), EdxmlError> {
        check_organ_id(&format!("{field}.organ_id"), &o.organ_id)?;
        self.open(name);
        self.leaf(field, "OrganId", o.organ_id.trim())?;
        let f = |suffix: &str| format!("{field}.{suffix}");
        self.opt_leaf(
            &f("organization_in_charge"),
            "OrganizationInCharge",
            o.organization_in_charge.as_deref(),
        )?;
        self.opt_leaf(&f("organ_name"), "OrganName", o.organ_name.as_deref())?;
        self.opt_leaf(&f("address"), "OrganAdd", o.address.as_deref())?;
        self.opt_leaf(&f("email"), "Email", o.email.as_deref())?;
        self.opt_leaf(&f("telephone"), "Telephone", o.telephone.as_deref())?;
        self.opt_leaf(&f("fax"), "Fax", o.fax.as_deref())?;
        self.opt_leaf(&f("website"), "Website", o.website.as_deref())?;
        self.close(name);
        Ok(())
    }

    pub(super) fn response_for(
        &mut self,
        field: &str,
        r: &ResponseForDescription,
    ) -> Result<(), EdxmlError> {
        check_organ_id(&format!("{field}.organ_id"), &r.organ_id)?;
        check_document_id(&format!("{field}.document_id"), &r.document_id)?;
        self.open("ResponseFor");
        self.leaf(field, "OrganId", r.organ_id.trim())?;
        self.opt_leaf(&format!("{field}.code"), "Code", r.code.as_deref())?;
        if let Some(date) = &r.promulgation_date {
            let f = format!("{field}.promulgation_date");
            let date = norm_date(&f, date)?;
            self.leaf(&f, "PromulgationDate", &date)?;
        }
        self.leaf(field, "DocumentId", r.document_id.trim())?;
        self.close("ResponseFor");
        Ok(())
    }

    /// `StaffInfo`; nothing for an empty `{}` (an empty element would read as "" and fail the schema).
    pub(super) fn staff(&mut self, field: &str, s: &StaffInfo) -> Result<(), EdxmlError> {
        if *s == StaffInfo::default() {
            return Ok(());
        }
        self.open("StaffInfo");
        self.opt_leaf(
            &format!("{field}.department"),
            "Department",
            s.department.as_deref(),
        )?;
        self.opt_leaf(&format!("{field}.staff"), "Staff", s.staff.as_deref())?;
        self.opt_leaf(&format!("{field}.email"), "Email", s.email.as_deref())?;
        self.opt_leaf(&format!("{field}.mobile"), "Mobile", s.mobile.as_deref())?;
        self.close("StaffInfo");
        Ok(())
    }

    pub(super) fn trace_header_list(
        &mut self,
        trace: &[TraceEntry],
        from: &str,
        timestamp: Option<&str>,
        document_id: &str,
        business: &Business,
    ) -> Result<(), EdxmlError> {
        self.open("TraceHeaderList");
        if trace.is_empty() {
            let now;
            let timestamp = match timestamp {
                Some(t) => t,
                None => {
                    now = now_in_vietnam();
                    &now
                }
            };
            self.open("TraceHeader");
            self.leaf("from.organ_id", "OrganId", from.trim())?;
            self.leaf("timestamp", "Timestamp", timestamp)?;
            self.close("TraceHeader");
        }
        for (i, t) in trace.iter().enumerate() {
            let field = format!("trace[{i}]");
            check_organ_id(&format!("{field}.organ_id"), &t.organ_id)?;
            let ts = norm_timestamp(&format!("{field}.timestamp"), &t.timestamp)?;
            self.open("TraceHeader");
            self.leaf(&field, "OrganId", t.organ_id.trim())?;
            self.leaf(&field, "Timestamp", &ts)?;
            self.close("TraceHeader");
        }
        self.open("Bussiness");
        let business_id = match &business.document_id {
            Some(id) => {
                check_document_id("business.document_id", id)?;
                id.trim()
            }
            None => document_id,
        };
        self.leaf("business.document_id", "DocumentId", business_id)?;
        let doc_type = business.doc_type.trim();
        if !matches!(doc_type, "0" | "1" | "2" | "3") {
            return Err(invalid(
                "business.doc_type",
                "must be 0 (new), 1 (revoke), 2 (update) or 3 (replace)",
            ));
        }
        self.leaf("business.doc_type", "BussinessDocType", doc_type)?;
        self.opt_leaf(
            "business.reason",
            "BussinessDocReason",
            business.reason.as_deref(),
        )?;
        self.leaf(
            "business.paper",
            "Paper",
            business.paper.as_deref().unwrap_or("0"),
        )?;
        if !business.replacements.is_empty() {
            self.open("ReplacementInfoList");
            for (i, r) in business.replacements.iter().enumerate() {
                let field = format!("business.replacements[{i}]");
                check_document_id(&format!("{field}.document_id"), &r.document_id)?;
                self.open("ReplacementInfo");
                self.leaf(&field, "DocumentId", r.document_id.trim())?;
                self.open("OrganIdList");
                for (j, id) in r.organ_ids.iter().enumerate() {
                    let f = format!("{field}.organ_ids[{j}]");
                    check_organ_id(&f, id)?;
                    self.leaf(&f, "OrganId", id.trim())?;
                }
                self.close("OrganIdList");
                self.close("ReplacementInfo");
            }
            self.close("ReplacementInfoList");
        }
        if let Some(staff) = &business.staff {
            self.staff("business.staff", staff)?;
        }
        self.close("Bussiness");
        self.close("TraceHeaderList");
        Ok(())
    }
}
