//! Local IOTMP server with a REST API (work in progress).
