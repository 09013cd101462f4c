//! libpam through pam-sys: one authentication (pam_start, PAM_RHOST, pam_authenticate,
//! pam_acct_mgmt, pam_end) whose conversation answers every prompt with the client's password.
//! This is the crate's only unsafe code; it runs on a blocking pool thread, never a worker.

use std::ffi::{CString, c_int, c_void};
use std::ptr;

use pam_sys::raw;
use pam_sys::{PamConversation, PamHandle, PamItemType, PamMessage, PamMessageStyle, PamResponse};

/// `PAM_SUCCESS`.
const SUCCESS: c_int = 0;
/// `PAM_BUF_ERR`: out of memory.
const BUF_ERR: c_int = 5;
/// `PAM_CONV_ERR`: the conversation failed.
const CONV_ERR: c_int = 19;
/// `PAM_MAX_NUM_MSG`: the most messages one conversation call may carry.
const MAX_NUM_MSG: c_int = 32;
/// `PAM_SILENT | PAM_DISALLOW_NULL_AUTHTOK`: no messages, and an account without a password
/// does not authenticate.
const FLAGS: c_int = 0x8000 | 0x0001;

/// Authenticates `user` with `password` through PAM service `service` (a file in
/// `/etc/pam.d`), then checks the account; `rhost` is the client's address. `Err` says why,
/// for the log.
pub fn authenticate(
    service: &str,
    user: &str,
    password: &str,
    rhost: Option<&str>,
) -> Result<(), String> {
    let nul = |what: &str| format!("the {what} holds a NUL byte");
    let service = CString::new(service).map_err(|_| nul("service name"))?;
    let user = CString::new(user).map_err(|_| nul("user name"))?;
    let password = CString::new(password).map_err(|_| nul("password"))?;
    let rhost = rhost
        .map(CString::new)
        .transpose()
        .map_err(|_| nul("address"))?;
    let conv = PamConversation {
        conv: Some(converse),
        data_ptr: password.as_ptr() as *mut c_void,
    };
    let mut handle: *const PamHandle = ptr::null();
    // SAFETY: the strings are NUL-terminated and, like `conv` (which PAM keeps a pointer to),
    // outlive the handle: pam_end runs below, before any of them is dropped. `handle` is an
    // out-pointer PAM fills.
    let rc = unsafe { raw::pam_start(service.as_ptr(), user.as_ptr(), &conv, &mut handle) };
    if rc != SUCCESS || handle.is_null() {
        return Err(format!("pam_start failed ({rc})"));
    }
    let handle = handle as *mut PamHandle;
    let mut step = "pam_set_item(PAM_RHOST)";
    let mut rc = SUCCESS;
    if let Some(rhost) = &rhost {
        // SAFETY: `handle` is live; PAM copies the NUL-terminated string item.
        rc = unsafe {
            raw::pam_set_item(handle, PamItemType::RHOST as c_int, rhost.as_ptr().cast())
        };
    }
    if rc == SUCCESS {
        step = "pam_authenticate";
        // SAFETY: `handle` is live; the conversation's data pointer (the password) still is.
        rc = unsafe { raw::pam_authenticate(handle, FLAGS) };
    }
    if rc == SUCCESS {
        step = "pam_acct_mgmt";
        // SAFETY: `handle` is live.
        rc = unsafe { raw::pam_acct_mgmt(handle, FLAGS) };
    }
    // SAFETY: `handle` came from pam_start and is ended exactly once; it is not used after.
    unsafe { raw::pam_end(handle, rc) };
    match rc {
        SUCCESS => Ok(()),
        rc => Err(format!("{step}: {}", pam_sys::PamReturnCode::from(rc))),
    }
}

/// The conversation: every prompt (echoed or not) is answered with the password in `data`;
/// informational and error messages get no answer. The answers are allocated with the C
/// allocator, as PAM frees them with `free`.
extern "C" fn converse(
    num_msg: c_int,
    msg: *mut *mut PamMessage,
    resp: *mut *mut PamResponse,
    data: *mut c_void,
) -> c_int {
    if !(1..=MAX_NUM_MSG).contains(&num_msg) || msg.is_null() || resp.is_null() || data.is_null() {
        return CONV_ERR;
    }
    let n = num_msg as usize;
    // SAFETY: calloc of n zeroed PamResponse (plain C data); null is checked.
    let replies = unsafe { libc::calloc(n, size_of::<PamResponse>()) } as *mut PamResponse;
    if replies.is_null() {
        return BUF_ERR;
    }
    for i in 0..n {
        // SAFETY: Linux-PAM passes `msg` as an array of `num_msg` pointers to messages, each
        // valid for the call; i < num_msg.
        let style = unsafe { (**msg.add(i)).msg_style };
        let prompt = style == PamMessageStyle::PROMPT_ECHO_OFF as c_int
            || style == PamMessageStyle::PROMPT_ECHO_ON as c_int;
        if !prompt {
            continue;
        }
        // SAFETY: `data` is the NUL-terminated password `authenticate` set as data_ptr and
        // keeps alive for the whole PAM call; strdup copies it with the C allocator.
        let answer = unsafe { libc::strdup(data as *const libc::c_char) };
        if answer.is_null() {
            free_replies(replies, n);
            return BUF_ERR;
        }
        // SAFETY: `replies` holds n entries and i < n.
        unsafe { (*replies.add(i)).resp = answer };
    }
    // SAFETY: `resp` is PAM's out-pointer for the answers, checked non-null; PAM owns them now.
    unsafe { *resp = replies };
    SUCCESS
}

/// Frees the answers given so far and the array (after an allocation failure).
fn free_replies(replies: *mut PamResponse, n: usize) {
    for i in 0..n {
        // SAFETY: `replies` holds n entries, each zeroed or set by strdup; free(NULL) is a no-op.
        unsafe { libc::free((*replies.add(i)).resp.cast()) };
    }
    // SAFETY: `replies` came from calloc and is freed once.
    unsafe { libc::free(replies.cast()) };
}
