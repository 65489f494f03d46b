//! What the hardware and the kernel define: descriptor and completion-record
//! formats (DSA.md sections 3-4), sysfs discovery of work queues (section
//! 1), and the portal a descriptor is submitted through (section 2).

pub mod completion;
pub mod descriptor;
pub mod discovery;
pub mod portal;
