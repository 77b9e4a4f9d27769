//! edXML (QCVN 102:2016) packages: streaming parser, builder, and document status transitions.
//! (stub — being implemented)
