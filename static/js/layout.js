// Runs on every page: the header's sign-out button.
import { post } from "./api.js";

const signOut = document.getElementById("sign-out");
if (signOut) {
  signOut.addEventListener("click", async () => {
    signOut.disabled = true;
    try {
      await post("/api/auth/logout");
    } catch {
      // Signing out of a session that already ended is still signing out.
    }
    window.location.assign("/");
  });
}
